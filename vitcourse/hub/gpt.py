"""Our :class:`~vitcourse.models.GPT` to and from Hugging Face's ``GPT2LMHeadModel``.

The two compute the same function; they differ in names and in one storage choice:

* **Conv1D**: GPT-2's original TensorFlow code stored every projection as ``x @ W`` with
  ``W`` shaped ``(in, out)``; Hugging Face keeps that layout (``Conv1D``), PyTorch's
  ``nn.Linear`` stores ``(out, in)``. Every projection weight is transposed on the way.
* **Q, K, V**: one fused ``c_attn`` ``(D, 3D)`` there, one fused ``qkv`` ``(3D, D)`` here:
  the same numbers, transposed. Cross-attention (``add_cross_attention=True``, a GPT-2
  that reads an encoder) splits them, ``q_attn`` and a ``(D, 2D)`` ``c_attn`` for K and V,
  which are concatenated.
* **the output layer**: ``lm_head.weight`` is the token embedding itself
  (``tie_word_embeddings``), ours is ``tok_embed.weight`` read twice (``lm_head="tied"``);
  an untied head (``tie_word_embeddings=False``) becomes ``lm_head="untied"``.
* **names**: ``transformer.h.{i}.ln_1`` is ``blocks.{i}.norm1``, ``mlp.c_fc`` is
  ``mlp.fc1``, ``ln_f`` is ``norm``, …: :func:`gpt2_names` lists every pair.

What no renaming can carry is refused with a :class:`~vitcourse.hub.ConversionError`
naming it: attention scaled by the inverse layer index, an activation we don't have, a
post-norm GPT-1 or a classification head (``GPT2LMHeadModel`` has neither), parameters
that don't correspond one to one.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models import GPT, GPTConfig
from .mapping import Imported, build_uninitialised, load_exactly, placement, refuse
from .vit import mlp_ratio_for

__all__ = ["GPT2_REVISION", "gpt2_names", "gpt_from_hf", "gpt_to_hf", "tiny_gpt2_config"]

#: The commit of ``openai-community/gpt2`` the book loads in the ``full`` profile.
GPT2_REVISION = "607a30d783dfa663caf39e06633721c8d4cfcd7e"

# Hugging Face's activation names -> ours (both sides compute the same function).
_ACTIVATIONS = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu": "gelu",
    "quick_gelu": "quick_gelu",
    "relu": "relu",
    "silu": "silu",
}
_HF_CLASSES = ("GPT2LMHeadModel", "GPT2Model")
_HINT = "convert a GPT-2-style model (pre-norm, final LayerNorm, no classification head)"


def gpt2_names(depth: int, cross_attention: bool = False) -> list[tuple[str, str, str]]:
    """Every parameter's Hugging Face name, our name, and how it moves.

    Args:
        depth: number of blocks.
        cross_attention: include the cross-attention sub-layers.

    Returns:
        ``(hf_name, our_name, how)`` with ``how`` one of ``"copy"``, ``"transpose"``
        (a Conv1D weight), ``"q"`` / ``"kv"`` (the parts of our fused cross-attention
        ``qkv``, weight or bias). Names without the ``transformer.`` prefix.
    """
    pairs = [("wte.weight", "tok_embed.weight", "copy"), ("wpe.weight", "pos_embed.weight", "copy")]
    for i in range(depth):
        h, b = f"h.{i}", f"blocks.{i}"
        linear = [("attn.c_attn", "attn.qkv"), ("attn.c_proj", "attn.proj")]
        linear += [("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")]
        norms = [("ln_1", "norm1"), ("ln_2", "norm2")]
        if cross_attention:
            linear.append(("crossattention.c_proj", "cross_attn.proj"))
            norms.append(("ln_cross_attn", "norm_cross"))
            for kind, hf_part in (("q", "q_attn"), ("kv", "c_attn")):
                for wb in ("weight", "bias"):
                    pairs.append((f"{h}.crossattention.{hf_part}.{wb}", f"{b}.cross_attn.qkv.{wb}", kind))
        for theirs, ours in norms:
            pairs += [(f"{h}.{theirs}.{wb}", f"{b}.{ours}.{wb}", "copy") for wb in ("weight", "bias")]
        for theirs, ours in linear:
            pairs.append((f"{h}.{theirs}.weight", f"{b}.{ours}.weight", "transpose"))
            pairs.append((f"{h}.{theirs}.bias", f"{b}.{ours}.bias", "copy"))
    pairs += [("ln_f.weight", "norm.weight", "copy"), ("ln_f.bias", "norm.bias", "copy")]
    return pairs


def tiny_gpt2_config():
    """A small ``transformers.GPT2Config`` (odd sizes) for tests and offline stand-ins."""
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=50257, n_positions=64, n_embd=36, n_layer=2, n_head=3, bos_token_id=50256, eos_token_id=50256
    )


def _check_hf(hf_model: nn.Module) -> str:
    name = type(hf_model).__name__
    what = f"Hugging Face {name} into vitcourse GPT"
    if name not in _HF_CLASSES:
        refuse(what, [f"expected one of {', '.join(_HF_CLASSES)}, got {name}"], _HINT)
    c = hf_model.config
    reasons = []
    if c.activation_function not in _ACTIVATIONS:
        reasons.append(f"activation_function={c.activation_function!r}: ours are {sorted(_ACTIVATIONS)}")
    if not c.scale_attn_weights:
        reasons.append("scale_attn_weights=False: our attention always divides the scores by √d_head")
    if c.scale_attn_by_inverse_layer_idx:
        reasons.append("scale_attn_by_inverse_layer_idx=True: our attention doesn't scale by 1 / (layer + 1)")
    if reasons:
        refuse(what, reasons, _HINT)
    return what


def _config_from_hf(c) -> GPTConfig:
    """Our config for a ``GPT2Config``."""
    return GPTConfig(
        vocab_size=c.vocab_size,
        max_seq_len=c.n_positions,
        embed_dim=c.n_embd,
        depth=c.n_layer,
        num_heads=c.n_head,
        mlp_ratio=mlp_ratio_for(c.n_inner or 4 * c.n_embd, c.n_embd),
        dropout=c.resid_pdrop,
        attn_dropout=c.attn_pdrop,
        activation=_ACTIVATIONS[c.activation_function],
        norm_eps=c.layer_norm_epsilon,
        lm_head="tied" if c.tie_word_embeddings else "untied",
        cross_attention=c.add_cross_attention,
    )


def gpt_from_hf(hf_model: nn.Module) -> GPT:
    """Our GPT with the weights of a Hugging Face ``GPT2LMHeadModel`` (or ``GPT2Model``).

    Args:
        hf_model: the Hugging Face model, from ``from_pretrained`` or a ``GPT2Config``.
            Its config sets ours: sizes, ``layer_norm_epsilon`` (``norm_eps``), the
            activation, dropout (``resid_pdrop``, ``attn_pdrop``), tied or untied output,
            cross-attention.

    Returns:
        A :class:`~vitcourse.models.GPT` computing the same logits, in the source's
        train/eval mode, device and floating-point dtype.

    Raises:
        ConversionError: another class, a setting we don't implement, or parameters that
            don't correspond one to one; the message names them.
    """
    what = _check_hf(hf_model)
    config = _config_from_hf(hf_model.config)
    foreign = {k.removeprefix("transformer."): v for k, v in hf_model.state_dict().items()}
    expected = gpt2_names(config.depth, config.cross_attention)
    state, origin, used = {}, {}, set()
    pieces: dict[str, dict[str, torch.Tensor]] = {}
    for theirs, ours, how in expected:
        if theirs not in foreign:
            continue
        used.add(theirs)
        tensor = foreign[theirs]
        origin[ours] = f"{origin[ours]} + {theirs}" if ours in origin else theirs  # q + kv
        if how in ("q", "kv"):
            pieces.setdefault(ours, {})[how] = tensor.T if ours.endswith("weight") else tensor
        else:
            state[ours] = tensor.T if how == "transpose" else tensor
    for ours, parts in pieces.items():
        if set(parts) == {"q", "kv"}:
            state[ours] = torch.cat([parts["q"], parts["kv"]], dim=0)  # [W^Q; W^K; W^V]
    head = foreign.get("lm_head.weight")
    if head is not None:
        used.add("lm_head.weight")
        if config.lm_head == "untied":
            state["lm_head.weight"] = head
            origin["lm_head.weight"] = "lm_head.weight"
        elif head.data_ptr() != foreign["wte.weight"].data_ptr() and not torch.equal(head, foreign["wte.weight"]):
            refuse(what, ["tie_word_embeddings=True but lm_head.weight differs from wte.weight"], _HINT)
    unknown = [k for k in foreign if k not in used and not k.endswith(("attn.bias", "attn.masked_bias"))]
    imported = Imported({k: v.contiguous() for k, v in state.items()}, origin, unknown)
    model = load_exactly(build_uninitialised(lambda: GPT(config)), imported, what, _HINT)
    return model.train(hf_model.training)


def _hf_config(config: GPTConfig, what: str):
    """The ``GPT2Config`` of our config, or a refusal saying what GPT-2 can't express."""
    from transformers import GPT2Config

    reasons = []
    if not config.norm_first or not config.final_norm:
        reasons.append("a post-norm block or no final norm (GPT-1): GPT-2 is pre-norm with ln_f")
    if config.norm != "layernorm":
        reasons.append(f"norm={config.norm!r}: GPT-2's norm is LayerNorm")
    if not config.qkv_bias:
        reasons.append("qkv_bias=False: GPT-2's c_attn has a bias")
    if config.lm_head == "none":
        reasons.append('lm_head="none": GPT2LMHeadModel needs an output layer')
    if config.num_classes:
        reasons.append(f"num_classes={config.num_classes}: GPT2LMHeadModel has no classification head")
    hf_act = {"gelu_tanh": "gelu_new", "gelu": "gelu", "quick_gelu": "quick_gelu", "relu": "relu", "silu": "silu"}
    if reasons:
        refuse(what, reasons, "convert a GPTConfig with GPT-2's layout (see the presets gpt2, gpt2_medium, …)")
    hidden = int(config.embed_dim * config.mlp_ratio)
    return GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.max_seq_len,
        n_embd=config.embed_dim,
        n_layer=config.depth,
        n_head=config.num_heads,
        n_inner=None if hidden == 4 * config.embed_dim else hidden,
        activation_function=hf_act[config.activation],
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.attn_dropout,
        layer_norm_epsilon=config.norm_eps,
        tie_word_embeddings=config.lm_head == "tied",
        add_cross_attention=config.cross_attention,
        bos_token_id=config.vocab_size - 1,
        eos_token_id=config.vocab_size - 1,
    )


def gpt_to_hf(model: GPT) -> nn.Module:
    """A Hugging Face ``GPT2LMHeadModel`` with our GPT's weights.

    Args:
        model: a :class:`~vitcourse.models.GPT` with GPT-2's layout (pre-norm, final
            LayerNorm, LayerNorm, an output layer, no classification head).

    Returns:
        The ``GPT2LMHeadModel`` (SDPA attention), computing the same logits, in the
        source's train/eval mode, device and dtype.

    Raises:
        ConversionError: a config GPT-2 can't express (GPT-1's post-norm, RMSNorm, a
            classification head, …); the message names each difference.
    """
    from transformers import GPT2LMHeadModel

    what = f"vitcourse {type(model).__name__} into Hugging Face GPT2LMHeadModel"
    if not isinstance(model, GPT):
        refuse(what, [f"expected vitcourse.models.GPT, got {type(model).__name__}"], _HINT)
    config = model.config
    hf_config = _hf_config(config, what)
    ours = model.state_dict()
    D = config.embed_dim
    state = {}
    for theirs, mine, how in gpt2_names(config.depth, config.cross_attention):
        tensor = ours[mine]
        if how == "q":
            tensor = tensor[:D]
        elif how == "kv":
            tensor = tensor[D:]
        if how == "transpose" or (how in ("q", "kv") and mine.endswith("weight")):
            tensor = tensor.T
        state[f"transformer.{theirs}"] = tensor.detach().clone().contiguous()
    state["lm_head.weight"] = (ours["lm_head.weight"] if config.lm_head == "untied" else ours["tok_embed.weight"]).clone()
    with torch.device("meta"):
        hf_model = GPT2LMHeadModel(hf_config)
    hf_model = hf_model.to_empty(device="cpu")
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    leftover = [k for k in missing if not k.endswith(("attn.bias", "attn.masked_bias"))]
    if leftover or unexpected:
        refuse(what, [], _HINT, leftover, unexpected)
    if config.lm_head == "tied":
        hf_model.tie_weights()
    hf_model.to(**placement(ours.values()))
    return hf_model.train(model.training)
