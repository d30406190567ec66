"""Our :class:`~vitcourse.models.CLIP` to and from Hugging Face's ``CLIPModel``, and
CLIP's real tokenizer, offline.

The two CLIPs compute the same function; they differ in names and storage:

* **Q, K, V**: three ``nn.Linear`` there (``q_proj``, ``k_proj``, ``v_proj``), one fused
  ``qkv`` here, in both towers: concatenated on the way in, sliced on the way out.
* **the [CLS] token and the position tables**: ``class_embedding`` ``(D,)`` and
  ``position_embedding.weight`` ``(T, D)`` there, ``cls_token`` ``(1, 1, D)`` and
  ``pos_embed.weight`` ``(1, T, D)`` in our ViT: reshaped.
* **names**: ``pre_layrnorm`` (sic) is ``visual.pre_norm``, ``post_layernorm`` is
  ``visual.norm`` (ours normalises every token and reads [CLS]; theirs reads [CLS] and
  normalises it: the same vector), ``final_layer_norm`` is ``text.norm``,
  ``visual_projection`` is ``visual_proj``…: :func:`clip_names` lists every pair.
* **end-of-text pooling**: a config with ``eos_token_id == 2`` (the Hub's original
  files) reads the largest id, as OpenAI's code does (``eot_token_id=None`` here);
  otherwise the first ``eos_token_id``.

What no renaming carries is refused with a :class:`~vitcourse.hub.ConversionError`:
different activations or LayerNorm ε in the two towers, attention dropout, MLP ratios
that differ between the towers.
"""

from __future__ import annotations

import functools
import gzip

import torch
from torch import nn

from ..models import CLIP, CLIPConfig
from .mapping import Imported, build_uninitialised, load_exactly, placement, refuse
from .vit import mlp_ratio_for

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "clip_from_hf",
    "clip_names",
    "clip_to_hf",
    "clip_tokenizer",
]

#: CLIP's per-channel pixel normalisation (OpenAI's preprocessing).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_HINT = "convert an OpenAI-style CLIPModel (same activation, ε and MLP ratio in both towers)"
_ACTIVATIONS = ("quick_gelu", "gelu", "relu", "silu")


def _tower_names(hf: str, ours: str, depth: int) -> list[tuple[str, str, str]]:
    pairs = []
    for i in range(depth):
        h, b = f"{hf}.encoder.layers.{i}", f"{ours}.blocks.{i}"
        for part, kind in (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v")):
            for wb in ("weight", "bias"):
                pairs.append((f"{h}.self_attn.{part}.{wb}", f"{b}.attn.qkv.{wb}", kind))
        for theirs, mine in (
            ("self_attn.out_proj", "attn.proj"),
            ("layer_norm1", "norm1"),
            ("mlp.fc1", "mlp.fc1"),
            ("mlp.fc2", "mlp.fc2"),
            ("layer_norm2", "norm2"),
        ):
            for wb in ("weight", "bias"):
                pairs.append((f"{h}.{theirs}.{wb}", f"{b}.{mine}.{wb}", "copy"))
    return pairs


def clip_names(vision_depth: int, text_depth: int) -> list[tuple[str, str, str]]:
    """Every parameter's Hugging Face name, our name, and how it moves.

    Args:
        vision_depth: blocks of the image encoder.
        text_depth: blocks of the text encoder.

    Returns:
        ``(hf_name, our_name, how)``; ``how`` is ``"copy"``, ``"q"``/``"k"``/``"v"``
        (a third of our fused ``qkv``), ``"cls"`` (``(D,)`` ↔ ``(1, 1, D)``) or
        ``"pos"`` (``(T, D)`` ↔ ``(1, T, D)``).
    """
    v, t = "vision_model", "text_model"
    pairs = [
        ("logit_scale", "logit_scale", "copy"),
        (f"{v}.embeddings.class_embedding", "visual.cls_token", "cls"),
        (f"{v}.embeddings.patch_embedding.weight", "visual.patch_embed.proj.weight", "copy"),
        (f"{v}.embeddings.position_embedding.weight", "visual.pos_embed.weight", "pos"),
    ]
    for wb in ("weight", "bias"):
        pairs.append((f"{v}.pre_layrnorm.{wb}", f"visual.pre_norm.{wb}", "copy"))
    pairs += _tower_names(v, "visual", vision_depth)
    for wb in ("weight", "bias"):
        pairs.append((f"{v}.post_layernorm.{wb}", f"visual.norm.{wb}", "copy"))
    pairs += [
        (f"{t}.embeddings.token_embedding.weight", "text.tok_embed.weight", "copy"),
        (f"{t}.embeddings.position_embedding.weight", "text.pos_embed.weight", "copy"),
    ]
    pairs += _tower_names(t, "text", text_depth)
    for wb in ("weight", "bias"):
        pairs.append((f"{t}.final_layer_norm.{wb}", f"text.norm.{wb}", "copy"))
    pairs += [
        ("visual_projection.weight", "visual_proj.weight", "copy"),
        ("text_projection.weight", "text_proj.weight", "copy"),
    ]
    return pairs


def _config_from_hf(hf_config, what: str) -> CLIPConfig:
    tc, vc = hf_config.text_config, hf_config.vision_config
    reasons = []
    if tc.hidden_act != vc.hidden_act or vc.hidden_act not in _ACTIVATIONS:
        reasons.append(
            f"hidden_act text={tc.hidden_act!r}, vision={vc.hidden_act!r}: ours is one "
            f"activation for both towers, one of {_ACTIVATIONS}"
        )
    if tc.layer_norm_eps != vc.layer_norm_eps:
        reasons.append(
            f"layer_norm_eps text={tc.layer_norm_eps}, vision={vc.layer_norm_eps}: ours "
            "is one ε for both towers"
        )
    ratio = mlp_ratio_for(vc.intermediate_size, vc.hidden_size)
    if int(tc.hidden_size * ratio) != tc.intermediate_size:
        ratio = mlp_ratio_for(tc.intermediate_size, tc.hidden_size)
    if (int(tc.hidden_size * ratio), int(vc.hidden_size * ratio)) != (
        tc.intermediate_size,
        vc.intermediate_size,
    ):
        reasons.append(
            f"intermediate_size/hidden_size text={tc.intermediate_size}/{tc.hidden_size}, "
            f"vision={vc.intermediate_size}/{vc.hidden_size}: ours is one mlp_ratio"
        )
    if tc.attention_dropout or vc.attention_dropout:
        reasons.append(
            f"attention_dropout text={tc.attention_dropout}, vision="
            f"{vc.attention_dropout}: ours has one dropout rate for attention and "
            "residual branches; convert a model with attention_dropout=0"
        )
    patch = vc.patch_size if isinstance(vc.patch_size, int) else vc.patch_size[0]
    image = vc.image_size if isinstance(vc.image_size, int) else vc.image_size[0]
    if reasons:
        refuse(what, reasons, _HINT)
    eos = tc.eos_token_id
    return CLIPConfig(
        embed_dim=hf_config.projection_dim,
        img_size=int(image),
        patch_size=int(patch),
        in_chans=vc.num_channels,
        vision_width=vc.hidden_size,
        vision_depth=vc.num_hidden_layers,
        vision_heads=vc.num_attention_heads,
        vocab_size=tc.vocab_size,
        context_length=tc.max_position_embeddings,
        text_width=tc.hidden_size,
        text_depth=tc.num_hidden_layers,
        text_heads=tc.num_attention_heads,
        mlp_ratio=ratio,
        activation=vc.hidden_act,
        norm_eps=vc.layer_norm_eps,
        eot_token_id=None if eos == 2 else eos,
        logit_scale_init=float(hf_config.logit_scale_init_value),
    )


def clip_from_hf(hf_model: nn.Module) -> CLIP:
    """Our CLIP with the weights of a Hugging Face ``CLIPModel``.

    Args:
        hf_model: from ``CLIPModel.from_pretrained`` or built from a ``CLIPConfig``.

    Returns:
        A :class:`~vitcourse.models.CLIP` whose ``encode_image`` / ``encode_text``
        equal ``get_image_features`` / ``get_text_features``, in the source's mode,
        device and floating-point dtype.

    Raises:
        ConversionError: another class, settings ours can't take, or parameters that
            don't correspond one to one; the message names them.
    """
    name = type(hf_model).__name__
    what = f"Hugging Face {name} into vitcourse CLIP"
    if name != "CLIPModel":
        refuse(what, [f"expected CLIPModel, got {name}"], _HINT)
    config = _config_from_hf(hf_model.config, what)
    foreign = hf_model.state_dict()
    state, origin, used, parts = {}, {}, set(), {}
    for theirs, ours, how in clip_names(config.vision_depth, config.text_depth):
        if theirs not in foreign:
            continue
        used.add(theirs)
        tensor = foreign[theirs]
        origin[ours] = f"{origin[ours]} + {theirs}" if ours in origin else theirs  # q + k + v
        if how in ("q", "k", "v"):
            parts.setdefault(ours, {})[how] = tensor
        elif how == "cls":
            state[ours] = tensor.reshape(1, 1, -1)
        elif how == "pos":
            state[ours] = tensor.unsqueeze(0)
        else:
            state[ours] = tensor
    for ours, qkv in parts.items():
        if set(qkv) == {"q", "k", "v"}:
            state[ours] = torch.cat([qkv["q"], qkv["k"], qkv["v"]], dim=0)
    unknown = [k for k in foreign if k not in used and not k.endswith("position_ids")]
    imported = Imported({k: v.contiguous() for k, v in state.items()}, origin, unknown)
    model = load_exactly(build_uninitialised(lambda: CLIP(config)), imported, what, _HINT)
    return model.train(hf_model.training)


def _hf_config(c: CLIPConfig):
    from transformers import CLIPConfig as HFCLIPConfig

    def hidden(width: int) -> int:
        return int(width * c.mlp_ratio)

    special = {}
    if c.vocab_size != 49408:  # CLIP's bos/pad ids don't exist in another vocabulary
        special = {"bos_token_id": None, "pad_token_id": None}
    text = dict(
        vocab_size=c.vocab_size,
        hidden_size=c.text_width,
        intermediate_size=hidden(c.text_width),
        num_hidden_layers=c.text_depth,
        num_attention_heads=c.text_heads,
        max_position_embeddings=c.context_length,
        hidden_act=c.activation,
        layer_norm_eps=c.norm_eps,
        eos_token_id=2 if c.eot_token_id is None else c.eot_token_id,
        projection_dim=c.embed_dim,
        **special,
    )
    vision = {
        "hidden_size": c.vision_width,
        "intermediate_size": hidden(c.vision_width),
        "num_hidden_layers": c.vision_depth,
        "num_attention_heads": c.vision_heads,
        "num_channels": c.in_chans,
        "image_size": c.img_size,
        "patch_size": c.patch_size,
        "hidden_act": c.activation,
        "layer_norm_eps": c.norm_eps,
        "projection_dim": c.embed_dim,
    }
    return HFCLIPConfig(
        text_config=text,
        vision_config=vision,
        projection_dim=c.embed_dim,
        logit_scale_init_value=c.logit_scale_init,
    )


def clip_to_hf(model: CLIP) -> nn.Module:
    """A Hugging Face ``CLIPModel`` with our CLIP's config and weights.

    Args:
        model: a :class:`~vitcourse.models.CLIP` with ``dropout=0``.

    Returns:
        The ``CLIPModel``, whose ``get_image_features`` / ``get_text_features`` equal
        our ``encode_image`` / ``encode_text``, in our model's mode, device and dtype.
        Its ``logit_scale`` is our unclamped ``t``.

    Raises:
        ConversionError: not a CLIP, or dropout (Hugging Face's CLIP has none outside
            attention).
    """
    from transformers import CLIPModel

    what = f"vitcourse {type(model).__name__} into Hugging Face CLIPModel"
    if not isinstance(model, CLIP):
        refuse(what, [f"expected vitcourse.models.CLIP, got {type(model).__name__}"], _HINT)
    c = model.config
    if c.dropout:
        refuse(what, [f"dropout={c.dropout}: Hugging Face's CLIP has no residual dropout"],
               "convert a CLIP built with dropout=0")
    ours = model.state_dict()
    state = {}
    for theirs, mine, how in clip_names(c.vision_depth, c.text_depth):
        tensor = ours[mine]
        if how in ("q", "k", "v"):
            tensor = tensor.chunk(3, dim=0)["qkv".index(how)]
        elif how == "cls":
            tensor = tensor.reshape(-1)
        elif how == "pos":
            tensor = tensor.squeeze(0)
        state[theirs] = tensor.detach().clone().contiguous()
    hf_model = build_uninitialised(lambda: CLIPModel(_hf_config(c)))
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    leftover = [k for k in missing if not k.endswith("position_ids")]
    if leftover or unexpected:
        refuse(what, [], _HINT, leftover, unexpected)
    hf_model.to(**placement(ours.values()))
    return hf_model.train(model.training)


# -- the tokenizer -------------------------------------------------------------------

#: Merges OpenAI's tokenizer reads from the file (the rest are never used).
_NUM_MERGES = 49152 - 256 - 2


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's and CLIP's printable stand-in for each byte, in the vocabulary's order:
    the printable bytes stand for themselves, the others get the characters from 256 on.
    """
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    order, chars = list(printable), list(printable)
    for b in range(256):
        if b not in printable:
            order.append(b)
            chars.append(256 + len(order) - len(printable) - 1)
    return dict(zip(order, map(chr, chars)))


@functools.cache
def clip_vocabulary() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """CLIP's vocabulary and merges, built from ``bpe_simple_vocab_16e6.txt.gz``.

    The 49 408 tokens are, in order: the 256 byte characters, the same with the
    end-of-word mark ``</w>``, one token per merge (48 894), then ``<|startoftext|>``
    (49 406) and ``<|endoftext|>`` (49 407).

    Returns:
        ``(vocab, merges)``: token → id and the merges in priority order.
    """
    from ..data import sources

    with gzip.open(sources.path("clip_bpe"), "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = tuple(tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1])
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def clip_tokenizer(model_max_length: int = 77):
    """Hugging Face's ``CLIPTokenizer`` with CLIP's real vocabulary, without the Hub.

    The vocabulary file ships in the ``open-clip-torch`` package
    (:func:`vitcourse.data.sources.path` ``("clip_bpe")``); the ids are OpenAI's:
    ``"a photo of a cat"`` → ``49406, 320, 1125, 539, 320, 2368, 49407``.

    Args:
        model_max_length: longest sequence (77 in CLIP); pass ``padding="max_length"``
            and ``truncation=True`` to get CLIP's fixed-length rows.

    Returns:
        A ``transformers.CLIPTokenizer`` (backed by the ``tokenizers`` library).
    """
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocabulary()
    return CLIPTokenizer(
        vocab=dict(vocab), merges=list(merges), model_max_length=model_max_length
    )
