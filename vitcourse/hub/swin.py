"""Our :class:`~vitcourse.models.Swin` to and from Hugging Face's and timm's, with the same numbers.

What a Swin converter must get right, beyond the Q, K, V split it shares with ViT:

* **patch merging** sits at the *end* of a stage in Hugging Face (and in the paper's
  code: ``encoder.layers.0.downsample`` merges stage 0's output) and at the *start* of
  the next stage in timm and here (``layers.1.downsample``): the index shifts by one.
  All three concatenate the ``2 × 2`` neighbours in the same order (top-left,
  bottom-left, top-right, bottom-right), so the ``4C → 2C`` reduction matrix copies as
  it is; the tests would catch a different order.
* **relative position bias**: the learned tables (``(2M-1)²`` rows, one column per
  head) copy as they are, *if* the three index them the same way. The index is a
  buffer derived from ``M`` (not saved by timm or transformers 5; saved by
  transformers 4); the converters compare every such buffer of the source with
  :func:`~vitcourse.layers.relative_position_index` and refuse on a difference.
* **windows larger than the grid**: a stage whose grid is no larger than ``M`` is one
  window, without shift (all three agree). Hugging Face still sizes that stage's table
  for ``M``, so a grid *smaller* than ``M`` can't be converted (Hugging Face can't run
  it either); timm and ours shrink the table.
* **LayerNorm ε** is 1e-5 everywhere in the three (``layer_norm_eps`` in Hugging Face);
  another value is refused.
* the masks of shifted windows use ``-inf`` here and ``-100`` in the others: after the
  softmax both give weights below ``e⁻¹⁰⁰ ≈ 4·10⁻⁴⁴``, the same in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..layers import relative_position_index
from ..models import Swin, SwinConfig
from .mapping import Rule, export_state, import_state, load_exactly, placement, refuse
from .vit import _check_hf_class, _label_fields, _rate, _square, mlp_ratio_for

__all__ = ["HF_SWIN_RULES", "TIMM_SWIN_RULES", "swin_from_hf", "swin_from_timm", "swin_to_hf"]

_HF_CLASSES = ("SwinModel", "SwinForImageClassification")
_WB = r"(weight|bias)"
_BLOCK = r"encoder\.layers\.(\d+)\.blocks\.(\d+)"
_OURS = r"layers.\1.blocks.\2"


def _next_stage(match) -> str:
    """Hugging Face's merge at the end of stage i is ours at the start of stage i + 1."""
    stage, part, kind = match.groups()
    return f"layers.{int(stage) + 1}.downsample.{part}.{kind}"


# Hugging Face name (without the "swin." prefix) -> ours; transformers >= 5 | 4 names.
HF_SWIN_RULES = [
    Rule(rf"embeddings\.patch_embeddings\.projection\.{_WB}", r"patch_embed.proj.\1"),
    Rule(rf"embeddings\.norm\.{_WB}", r"patch_norm.\1"),
    Rule(r"embeddings\.mask_token", None),  # masked image modelling (SimMIM) only
    Rule(rf"{_BLOCK}\.layernorm_before\.{_WB}", rf"{_OURS}.norm1.\3"),
    Rule(rf"{_BLOCK}\.attention\.(?:q_proj|self\.query)\.{_WB}", rf"{_OURS}.attn.qkv.\3", part=0),
    Rule(rf"{_BLOCK}\.attention\.(?:k_proj|self\.key)\.{_WB}", rf"{_OURS}.attn.qkv.\3", part=1),
    Rule(rf"{_BLOCK}\.attention\.(?:v_proj|self\.value)\.{_WB}", rf"{_OURS}.attn.qkv.\3", part=2),
    Rule(rf"{_BLOCK}\.attention\.(?:o_proj|output\.dense)\.{_WB}", rf"{_OURS}.attn.proj.\3"),
    Rule(
        rf"{_BLOCK}\.attention\.(?:relative_position_bias|self)\.relative_position_bias_table",
        rf"{_OURS}.attn.relative_position_bias_table",
    ),
    Rule(rf"{_BLOCK}\.attention\.(?:relative_position_bias|self)\.relative_position_index", None),  # derived
    Rule(rf"{_BLOCK}\.layernorm_after\.{_WB}", rf"{_OURS}.norm2.\3"),
    Rule(rf"{_BLOCK}\.(?:mlp\.fc1|intermediate\.dense)\.{_WB}", rf"{_OURS}.mlp.fc1.\3"),
    Rule(rf"{_BLOCK}\.(?:mlp\.fc2|output\.dense)\.{_WB}", rf"{_OURS}.mlp.fc2.\3"),
    Rule(rf"encoder\.layers\.(\d+)\.downsample\.(reduction|norm)\.{_WB}", _next_stage),
    Rule(rf"layernorm\.{_WB}", r"norm.\1"),
    Rule(rf"classifier\.{_WB}", r"head.\1"),
]

# timm name -> ours: two modules are named differently, the rest is the same.
TIMM_SWIN_RULES = [
    Rule(rf"patch_embed\.norm\.{_WB}", r"patch_norm.\1"),
    Rule(rf"head\.fc\.{_WB}", r"head.\1"),
    Rule(r".*(?:relative_position_index|attn_mask)", None),  # derived buffers (older timm saved them)
    Rule(r"(.+)", r"\1"),
]


def _check_relative_index(model: nn.Module, what: str) -> None:
    """Refuse a source whose relative-position index differs from ours (its tables would be read in another order)."""
    for name, index in model.named_buffers():
        if not name.endswith("relative_position_index"):
            continue
        M = round(index.numel() ** 0.25)  # the index is (M², M²), maybe flattened
        if not torch.equal(index.reshape(-1).cpu(), relative_position_index(M).reshape(-1)):
            refuse(what, [f"{name} indexes the relative-position table differently from ours"])


def _config(what: str, **fields) -> SwinConfig:
    try:
        return SwinConfig(**fields)
    except ValueError as error:
        refuse(what, [f"our Swin can't take this configuration: {error}"])


# -- Hugging Face ------------------------------------------------------------------


def swin_from_hf(hf_model: nn.Module) -> Swin:
    """Our Swin with the weights of a Hugging Face ``SwinModel`` or ``SwinForImageClassification``.

    Args:
        hf_model: e.g. ``SwinForImageClassification.from_pretrained("microsoft/swin-tiny-patch4-window7-224")``.
            A ``SwinModel`` gives ``num_classes=0``: our model then returns the averaged,
            normalised last map, Hugging Face's ``pooler_output``.

    Returns:
        A :class:`~vitcourse.models.Swin` computing the same logits, in the source's mode.

    Raises:
        ConversionError: absolute position embeddings, another activation or LayerNorm ε,
            grids that windows don't tile (Hugging Face pads them, ours refuses), a
            different relative-position index, or parameters that don't map one to one.
    """
    name = _check_hf_class(hf_model, _HF_CLASSES, "vitcourse Swin", "convert a plain Swin (V1)")
    what = f"Hugging Face {name} into vitcourse Swin"
    c = hf_model.config
    reasons = []
    if c.hidden_act != "gelu":
        reasons.append(f'hidden_act={c.hidden_act!r}: our MLP uses the exact GELU ("gelu")')
    if c.layer_norm_eps != 1e-5:
        reasons.append(f"layer_norm_eps={c.layer_norm_eps}: our Swin's LayerNorms use 1e-5")
    if reasons:
        refuse(what, reasons)
    _check_relative_index(hf_model, what)
    has_head = name == "SwinForImageClassification" and not isinstance(hf_model.classifier, nn.Identity)
    config = _config(
        what,
        img_size=_square(c.image_size, "image_size", what),
        patch_size=_square(c.patch_size, "patch_size", what),
        in_chans=c.num_channels,
        num_classes=c.num_labels if has_head else 0,
        embed_dim=c.embed_dim,
        depths=tuple(c.depths),
        num_heads=tuple(c.num_heads),
        window_size=c.window_size,
        mlp_ratio=float(c.mlp_ratio),  # both size each stage's MLP as int(dim * mlp_ratio)
        qkv_bias=c.qkv_bias,
        dropout=c.hidden_dropout_prob,
        attn_dropout=c.attention_probs_dropout_prob,
        drop_path=c.drop_path_rate,
    )
    imported = import_state(hf_model.state_dict(), HF_SWIN_RULES, prefix=f"{hf_model.base_model_prefix}.")
    model = load_exactly(Swin(config), imported, what, "check that both are Swin V1 with the same sizes")
    return model.train(hf_model.training)


def swin_to_hf(model: Swin, labels: Sequence[str] | None = None) -> nn.Module:
    """A Hugging Face Swin with our model's config and weights.

    Args:
        model: a :class:`~vitcourse.models.Swin`.
        labels: class names for ``config.id2label``.

    Returns:
        ``SwinForImageClassification`` (``SwinModel`` for ``num_classes=0``) computing the
        same logits, in our model's mode.

    Raises:
        ConversionError: a stage whose grid is smaller than the window (Hugging Face
            sizes its bias table for the full window and can't run it).
    """
    from transformers import SwinConfig as HFSwinConfig
    from transformers import SwinForImageClassification, SwinModel

    what = "vitcourse Swin into Hugging Face Swin"
    if type(model) is not Swin:
        refuse(what, [f"expected vitcourse.models.Swin, got {type(model).__name__}"])
    c = model.config
    small = [f"stage {i}: a {r}x{r} grid" for i, r in enumerate(c.resolutions) if r < c.window_size]
    if small:
        refuse(what, [f"window_size={c.window_size} is larger than {', '.join(small)}; Hugging Face's Swin "
                      f"sizes every bias table for the full window"], "use a window_size no larger than every grid")
    hf_config = HFSwinConfig(
        image_size=c.img_size,
        patch_size=c.patch_size,
        num_channels=c.in_chans,
        embed_dim=c.embed_dim,
        depths=list(c.depths),
        num_heads=list(c.num_heads),
        window_size=c.window_size,
        mlp_ratio=c.mlp_ratio,
        qkv_bias=c.qkv_bias,
        hidden_dropout_prob=c.dropout,
        attention_probs_dropout_prob=c.attn_dropout,
        drop_path_rate=c.drop_path,
        hidden_act="gelu",
        use_absolute_embeddings=False,
        layer_norm_eps=1e-5,
        **_label_fields(labels, c.num_classes),
    )
    hf_model = SwinForImageClassification(hf_config) if c.num_classes > 0 else SwinModel(hf_config)
    prefix = f"{hf_model.base_model_prefix}." if c.num_classes > 0 else ""
    state = export_state(model.state_dict(), hf_model, HF_SWIN_RULES, what, prefix)
    hf_model.to(**placement(model.parameters()))
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    assert not unexpected and all(key.endswith("relative_position_index") for key in missing), (missing, unexpected)
    return hf_model.train(model.training)


# -- timm --------------------------------------------------------------------------


def _timm_swin_reasons(timm_model: nn.Module) -> list[str]:
    reasons = []
    if timm_model.global_pool != "avg":
        reasons.append(f"global_pool={timm_model.global_pool!r}: ours averages the last map (\"avg\")")
    eps = {module.eps for module in timm_model.modules() if isinstance(module, nn.LayerNorm)}
    if eps != {1e-5}:
        reasons.append(f"LayerNorm epsilons {sorted(eps)}: our Swin's are 1e-5")
    ratios = set()
    for i, stage in enumerate(timm_model.layers):
        for j, block in enumerate(stage.blocks):
            act = block.mlp.act
            if not isinstance(act, nn.GELU) or act.approximate != "none":
                reasons.append(f"layers.{i}.blocks.{j}.mlp.act is {act!r}; ours is the exact nn.GELU()")
            if getattr(block, "always_partition", False):
                reasons.append(f"layers.{i}.blocks.{j} has always_partition=True; ours shrinks windows to small grids")
            ratios.add(getattr(block, "mlp_ratio", block.mlp.fc1.out_features / block.mlp.fc1.in_features))
    if len(ratios) > 1:
        reasons.append(f"stages use different MLP ratios {sorted(ratios)}; ours uses one")
    return reasons


def swin_from_timm(timm_model: nn.Module) -> Swin:
    """Our Swin with the weights of a timm ``SwinTransformer`` (``swin_*`` presets).

    The config is read off the model; every block's window and shift must come out
    the same as timm's (timm can also set a window per stage, or pad grids that
    windows don't tile: those are refused).

    Args:
        timm_model: e.g. ``timm.create_model("swin_tiny_patch4_window7_224", pretrained=True)``.

    Returns:
        A :class:`~vitcourse.models.Swin` computing the same logits, in the source's mode.

    Raises:
        ConversionError: with the settings or parameters that differ.
    """
    name = type(timm_model).__name__
    what = f"timm {name} into vitcourse Swin"
    if name != "SwinTransformer":
        refuse(what, [f"expected timm's SwinTransformer, got {name} (Swin V2 and others differ)"])
    reasons = _timm_swin_reasons(timm_model)
    if reasons:
        refuse(what, reasons)
    _check_relative_index(timm_model, what)
    embed, first = timm_model.patch_embed, timm_model.layers[0].blocks[0]
    windows = [max(stage.blocks[0].attn.window_size) for stage in timm_model.layers]
    reference = getattr(timm_model, "_ref_window_sizes", None)  # the window asked for, before shrinking
    config = _config(
        what,
        img_size=_square(embed.img_size, "img_size", what),
        patch_size=_square(embed.patch_size, "patch_size", what),
        in_chans=embed.proj.in_channels,
        num_classes=timm_model.num_classes,
        embed_dim=embed.proj.out_channels,
        depths=tuple(len(stage.blocks) for stage in timm_model.layers),
        num_heads=tuple(stage.blocks[0].attn.num_heads for stage in timm_model.layers),
        window_size=max(reference[0]) if reference else max(windows),
        mlp_ratio=float(getattr(first, "mlp_ratio", mlp_ratio_for(first.mlp.fc1.out_features, first.dim))),
        qkv_bias=first.attn.qkv.bias is not None,
        dropout=first.mlp.drop1.p,
        attn_dropout=first.attn.attn_drop.p,
        drop_path=_rate(getattr(timm_model.layers[-1].blocks[-1].drop_path1, "drop_prob", 0.0)),
    )
    model = Swin(config)
    theirs = [(tuple(b.window_size), tuple(b.shift_size)) for stage in timm_model.layers for b in stage.blocks]
    ours = [((b.window_size,) * 2, (b.shift_size,) * 2) for stage in model.layers for b in stage.blocks]
    if theirs != ours:
        refuse(what, [f"windows and shifts per block differ: timm {theirs}, ours {ours}"],
               "use one window size that tiles every stage's grid")
    imported = import_state(timm_model.state_dict(), TIMM_SWIN_RULES)
    model = load_exactly(model, imported, what, "check that both are Swin V1 with the same sizes")
    return model.train(timm_model.training)
