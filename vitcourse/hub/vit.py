"""Our :class:`~vitcourse.models.ViT` to and from Hugging Face's and timm's, with the same numbers.

The three implementations compute the same function; they differ in names and in
a few choices that a converter must carry over or refuse:

* **Q, K, V**: three ``nn.Linear`` in Hugging Face (``q_proj``, ``k_proj``, ``v_proj``),
  one fused ``qkv`` in timm and here (Q, K, V stacked along the output dimension, the
  heads contiguous inside each): a converter concatenates or splits them.
* **LayerNorm ε**: ``layer_norm_eps`` in Hugging Face (1e-12 by default), 1e-6 in timm;
  ours is ``ViTConfig.norm_eps`` and takes the source's value.
* **activation**: the exact GELU in all three (Hugging Face's ``hidden_act="gelu"``);
  any other is refused.
* **position table**: ``embeddings.position_embeddings`` (Hugging Face), ``pos_embed``
  (timm), ``pos_embed.weight`` (ours).
* **classifier**: ``classifier`` (Hugging Face), ``head`` (timm, ours), on the [CLS] token.

Hugging Face's ``ViTModel`` also has a *pooler* (``tanh(W · [CLS])``, a leftover of
BERT's next-sentence head) that ``ViTForImageClassification`` doesn't use; it has no
counterpart here and is left out: a ``ViTModel`` becomes a ViT without a head
(``num_classes=0``), whose output is the normalised [CLS] token,
``last_hidden_state[:, 0]``.

The parameter names changed in transformers 5 (``layers.0.attention.q_proj``; before:
``encoder.layer.0.attention.attention.query``); the rules below know both.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from torch import nn

from ..models import ViT, ViTConfig, state_dict_from_timm
from .mapping import (
    Imported,
    Rule,
    build_uninitialised,
    export_state,
    import_state,
    load_exactly,
    placement,
    refuse,
)

__all__ = ["HF_VIT_RULES", "mlp_ratio_for", "replace_head", "vit_from_hf", "vit_from_timm", "vit_to_hf"]

_HF_CLASSES = ("ViTModel", "ViTForImageClassification")
_WB = r"(weight|bias)"
_BLOCK = r"(?:layers|encoder\.layer)\.(\d+)"  # transformers >= 5 | transformers 4 and the Hub's files

# Hugging Face name (without the "vit." prefix) -> ours.
HF_VIT_RULES = [
    Rule(r"embeddings\.cls_token", "cls_token"),
    Rule(r"embeddings\.position_embeddings", "pos_embed.weight"),
    Rule(rf"embeddings\.patch_embeddings\.projection\.{_WB}", r"patch_embed.proj.\1"),
    Rule(r"embeddings\.mask_token", None),  # masked image modelling (SimMIM) only
    Rule(rf"{_BLOCK}\.layernorm_before\.{_WB}", r"blocks.\1.norm1.\2"),
    Rule(rf"{_BLOCK}\.attention\.(?:q_proj|attention\.query)\.{_WB}", r"blocks.\1.attn.qkv.\2", part=0),
    Rule(rf"{_BLOCK}\.attention\.(?:k_proj|attention\.key)\.{_WB}", r"blocks.\1.attn.qkv.\2", part=1),
    Rule(rf"{_BLOCK}\.attention\.(?:v_proj|attention\.value)\.{_WB}", r"blocks.\1.attn.qkv.\2", part=2),
    Rule(rf"{_BLOCK}\.attention\.(?:o_proj|output\.dense)\.{_WB}", r"blocks.\1.attn.proj.\2"),
    Rule(rf"{_BLOCK}\.layernorm_after\.{_WB}", r"blocks.\1.norm2.\2"),
    Rule(rf"{_BLOCK}\.(?:mlp\.fc1|intermediate\.dense)\.{_WB}", r"blocks.\1.mlp.fc1.\2"),
    Rule(rf"{_BLOCK}\.(?:mlp\.fc2|output\.dense)\.{_WB}", r"blocks.\1.mlp.fc2.\2"),
    Rule(rf"layernorm\.{_WB}", r"norm.\1"),
    Rule(rf"pooler\.dense\.{_WB}", None),  # see the module docstring
    Rule(rf"classifier\.{_WB}", r"head.\1"),
]


def mlp_ratio_for(hidden_features: int, embed_dim: int) -> float:
    """The ``mlp_ratio`` for which ``int(embed_dim * mlp_ratio) == hidden_features``.

    Every model here sizes its MLP that way; ``hidden / dim`` alone can fall a hair short
    in floating point (``int(36 * (37 / 36))`` must give 37, not 36).
    """
    ratio = hidden_features / embed_dim
    while int(embed_dim * ratio) < hidden_features:
        ratio = math.nextafter(ratio, math.inf)
    return ratio


def _square(value, name: str, source: str) -> int:
    """An int from an int or an ``(h, w)`` pair with ``h == w``."""
    if isinstance(value, int):
        return value
    h, w = value
    if h != w:
        refuse(source, [f"{name}={tuple(value)} is not square; our models take square {name}s"])
    return int(h)


def _image_size(value) -> int | tuple[int, int]:
    """An int for a square image, else ``(height, width)``."""
    if isinstance(value, int):
        return value
    h, w = int(value[0]), int(value[1])
    return h if h == w else (h, w)


def _rate(value: float) -> float:
    """A drop-path rate timm computed in float32 (0.10000000149…), back to the number asked for (0.1)."""
    return float(f"{value:.6g}")


def _build(config: ViTConfig) -> ViT:
    return build_uninitialised(lambda: ViT(config))


def _config(what: str, hint: str, **fields) -> ViTConfig:
    """Our config, turning its validation errors into conversion errors."""
    try:
        return ViTConfig(**fields)
    except ValueError as error:
        refuse(what, [f"our ViT can't take this configuration: {error}"], hint)


# -- Hugging Face ------------------------------------------------------------------


def _check_hf_class(hf_model: nn.Module, classes: Sequence[str], target: str, hint: str) -> str:
    name = type(hf_model).__name__
    if name not in classes:
        refuse(f"{name} into {target}", [f"expected one of {', '.join(classes)}, got {name}"], hint)
    return name


def vit_from_hf(hf_model: nn.Module) -> ViT:
    """Our ViT with the weights of a Hugging Face ``ViTModel`` or ``ViTForImageClassification``.

    Args:
        hf_model: the Hugging Face model (from ``from_pretrained`` or built from a
            ``ViTConfig``). Its ``config`` sets ours: sizes, ``layer_norm_eps`` (as
            ``norm_eps``), dropout rates; the classifier becomes ``head`` (a
            ``ViTModel`` gives ``num_classes=0``).

    Returns:
        A :class:`~vitcourse.models.ViT` computing the same logits (or, from a
        ``ViTModel``, the same normalised [CLS] token), in the source's train/eval mode.

    Raises:
        ConversionError: another class (DeiT with a distillation token, a hybrid…), an
            activation other than the exact GELU, sizes our ViT can't take, or parameters
            that don't map one to one; the message names them.
    """
    hint = "convert plain ViTs only (DeiT without distillation is one: facebook/deit-*-patch16-224)"
    name = _check_hf_class(hf_model, _HF_CLASSES, "vitcourse ViT", hint)
    what = f"Hugging Face {name} into vitcourse ViT"
    c = hf_model.config
    reasons = []
    if c.hidden_act != "gelu":
        reasons.append(f'hidden_act={c.hidden_act!r}: our MLP uses the exact GELU ("gelu")')
    head_dim = getattr(c, "head_dim", None)
    if head_dim is not None and head_dim * c.num_attention_heads != c.hidden_size:
        reasons.append(f"head_dim={head_dim} × {c.num_attention_heads} heads != hidden_size={c.hidden_size}")
    if reasons:
        refuse(what, reasons, hint)
    has_head = name == "ViTForImageClassification" and not isinstance(hf_model.classifier, nn.Identity)
    config = _config(
        what,
        hint,
        img_size=_image_size(c.image_size),
        patch_size=_square(c.patch_size, "patch_size", what),
        in_chans=c.num_channels,
        num_classes=c.num_labels if has_head else 0,
        embed_dim=c.hidden_size,
        depth=c.num_hidden_layers,
        num_heads=c.num_attention_heads,
        mlp_ratio=mlp_ratio_for(c.intermediate_size, c.hidden_size),
        qkv_bias=c.qkv_bias,
        dropout=c.hidden_dropout_prob,
        attn_dropout=c.attention_probs_dropout_prob,
        norm_eps=c.layer_norm_eps,
    )
    imported = import_state(hf_model.state_dict(), HF_VIT_RULES, prefix=f"{hf_model.base_model_prefix}.")
    model = load_exactly(_build(config), imported, what, hint)
    return model.train(hf_model.training)


def _label_fields(labels: Sequence[str] | None, num_classes: int) -> dict:
    """``num_labels`` or ``id2label``/``label2id`` for a Hugging Face config."""
    if labels is None:
        return {"num_labels": num_classes} if num_classes > 0 else {}
    if len(labels) != num_classes:
        raise ValueError(f"got {len(labels)} labels for a model with num_classes={num_classes}; pass one per class")
    return {"id2label": dict(enumerate(labels)), "label2id": {label: i for i, label in enumerate(labels)}}


def _check_plain_vit(model: nn.Module, target: str) -> None:
    if type(model) is not ViT:
        refuse(
            f"{type(model).__name__} into {target}",
            [f"expected vitcourse.models.ViT, got {type(model).__name__} (a distillation token or a CNN stem "
             f"has no place in {target})"],
            "convert a plain ViT",
        )
    if model.config.pool != "cls":
        refuse(
            f"ViT into {target}",
            [f'pool={model.config.pool!r}: Hugging Face\'s ViT classifies the [CLS] token (pool="cls")'],
            "convert a ViT with pool='cls'",
        )


def vit_to_hf(model: ViT, labels: Sequence[str] | None = None) -> nn.Module:
    """A Hugging Face ViT with our model's config and weights.

    Args:
        model: a plain :class:`~vitcourse.models.ViT` with ``pool="cls"``.
        labels: class names for ``config.id2label`` (what pipelines print); by default
            Hugging Face's ``LABEL_0``, ``LABEL_1``…

    Returns:
        ``ViTForImageClassification`` (or, for ``num_classes=0``, a ``ViTModel`` without
        pooler) computing the same logits, in our model's train/eval mode. Stochastic
        depth (``drop_path``) has no Hugging Face counterpart; it only matters in training.

    Raises:
        ConversionError: a ViT subclass (DeiT, hybrid) or mean pooling.
    """
    from transformers import ViTConfig as HFViTConfig
    from transformers import ViTForImageClassification, ViTModel

    target = "Hugging Face ViT"
    _check_plain_vit(model, target)
    c = model.config
    label_fields = _label_fields(labels, c.num_classes)
    hf_config = HFViTConfig(
        hidden_size=c.embed_dim,
        num_hidden_layers=c.depth,
        num_attention_heads=c.num_heads,
        intermediate_size=int(c.embed_dim * c.mlp_ratio),
        hidden_act="gelu",
        hidden_dropout_prob=c.dropout,
        attention_probs_dropout_prob=c.attn_dropout,
        layer_norm_eps=c.norm_eps,
        image_size=c.img_size if isinstance(c.img_size, int) else list(c.img_size),
        patch_size=c.patch_size,
        num_channels=c.in_chans,
        qkv_bias=c.qkv_bias,
        **label_fields,
    )
    if c.num_classes > 0:
        hf_model = build_uninitialised(lambda: ViTForImageClassification(hf_config))
    else:
        hf_model = build_uninitialised(lambda: ViTModel(hf_config, add_pooling_layer=False))
    prefix = f"{hf_model.base_model_prefix}." if c.num_classes > 0 else ""
    state = export_state(model.state_dict(), hf_model, HF_VIT_RULES, f"vitcourse ViT into {target}", prefix)
    hf_model.to(**placement(model.parameters()))
    hf_model.load_state_dict(state, strict=True)
    return hf_model.train(model.training)


# -- timm --------------------------------------------------------------------------


def _timm_vit_reasons(timm_model: nn.Module) -> list[str]:
    """Differences between a timm VisionTransformer and ours that its parameter names don't show."""
    reasons = []
    pool_ok = timm_model.global_pool == "token" or (
        timm_model.global_pool == "avg"
        and isinstance(timm_model.fc_norm, nn.Identity)
        and not getattr(timm_model, "pool_include_prefix", False)
    )
    if not pool_ok or getattr(timm_model, "attn_pool", None) is not None:
        reasons.append(
            f"global_pool={timm_model.global_pool!r} (fc_norm: {type(timm_model.fc_norm).__name__}): ours pools the "
            f'[CLS] token ("token") or averages the normalised patch tokens ("avg" without fc_norm)'
        )
    for i, block in enumerate(timm_model.blocks):
        kinds = (type(block).__name__, type(block.attn).__name__, type(block.mlp).__name__)
        if kinds != ("Block", "Attention", "Mlp"):
            reasons.append(f"blocks.{i} is {kinds[0]}({kinds[1]}, {kinds[2]}); ours, a pre-norm Block(Attention, Mlp)")
            break
        act = block.mlp.act
        if not isinstance(act, nn.GELU) or act.approximate != "none":
            reasons.append(f"blocks.{i}.mlp.act is {act!r}; ours is the exact nn.GELU()")
            break
    eps = {module.eps for module in timm_model.modules() if isinstance(module, nn.LayerNorm)}
    if len(eps) > 1:
        reasons.append(f"its LayerNorms use different epsilons {sorted(eps)}; ours share one (norm_eps)")
    return reasons


def vit_from_timm(timm_model: nn.Module) -> ViT:
    """Our ViT with the weights of a timm ``VisionTransformer`` (``vit_*``, ``deit_*`` without distillation).

    Names are timm's except the position table (:func:`~vitcourse.models.state_dict_from_timm`);
    the config is read off the model (sizes from its layers, LayerNorm ε, pooling, dropout rates).

    Args:
        timm_model: e.g. ``timm.create_model("vit_base_patch16_224", pretrained=True)``.

    Returns:
        A :class:`~vitcourse.models.ViT` computing the same logits, in the source's mode.

    Raises:
        ConversionError: a distilled DeiT (``dist_token``, ``head_dist``), a hybrid (CNN
            stem), layer scale, register tokens, ``fc_norm``, attention pooling, another
            activation…; the message names the parameters or settings that differ.
    """
    name = type(timm_model).__name__
    what = f"timm {name} into vitcourse ViT"
    hint = (
        "for DeiT with a distillation token use vitcourse.models.DistilledViT (its names are timm's: "
        "model.load_state_dict(state_dict_from_timm(timm_model.state_dict()))); for a CNN stem, HybridViT"
    )
    if not all(hasattr(timm_model, attr) for attr in ("patch_embed", "blocks", "global_pool")):
        refuse(what, [f"{name} is not a timm VisionTransformer"], hint)
    state = timm_model.state_dict()
    embed = timm_model.patch_embed
    if type(embed).__name__ != "PatchEmbed":
        stem = [key for key in state if key.startswith("patch_embed.") and not key.startswith("patch_embed.proj.")]
        refuse(what, [f"its patch embedding is a {type(embed).__name__} (a CNN stem), ours a single linear projection"],
               hint, unexpected=stem)
    reasons = _timm_vit_reasons(timm_model)
    if reasons:
        refuse(what, reasons, hint)
    block = timm_model.blocks[0]
    norms = [module for module in timm_model.modules() if isinstance(module, nn.LayerNorm)]
    drop_path = _rate(getattr(timm_model.blocks[-1].drop_path1, "drop_prob", 0.0))
    config = _config(
        what,
        hint,
        img_size=_image_size(embed.img_size),
        patch_size=_square(embed.patch_size, "patch_size", what),
        in_chans=embed.proj.in_channels,
        num_classes=timm_model.num_classes,
        embed_dim=timm_model.embed_dim,
        depth=len(timm_model.blocks),
        num_heads=block.attn.num_heads,
        mlp_ratio=mlp_ratio_for(block.mlp.fc1.out_features, timm_model.embed_dim),
        qkv_bias=block.attn.qkv.bias is not None,
        dropout=block.mlp.drop1.p,
        attn_dropout=block.attn.attn_drop.p,
        drop_path=drop_path,
        pool="cls" if timm_model.global_pool == "token" else "mean",
        norm_eps=norms[0].eps if norms else 1e-6,
    )
    ours = state_dict_from_timm(state)
    origin = {key: theirs for key, theirs in zip(ours, state)}
    model = load_exactly(_build(config), Imported(ours, origin, []), what, hint)
    return model.train(timm_model.training)


def replace_head(model: ViT, num_classes: int) -> ViT:
    """A copy of ``model`` with a new, freshly initialised head of ``num_classes`` outputs.

    Every other weight is kept: this is what fine-tuning on a new label set starts from.
    """
    new = ViT(dataclasses.replace(model.config, num_classes=num_classes))
    new.to(**placement(model.parameters()))
    kept = {key: value for key, value in model.state_dict().items() if not key.startswith("head.")}
    missing, unexpected = new.load_state_dict(kept, strict=False)
    assert not unexpected and all(key.startswith("head.") for key in missing), (missing, unexpected)
    return new.train(model.training)
