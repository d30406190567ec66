"""Hugging Face's ``RTDetrForObjectDetection`` at a tiny size, offline, next to our hybrid encoder.

``PekingU/rtdetr_r50vd`` is RT-DETR as published; offline, :func:`tiny_rtdetr` builds
the same architecture with random weights and a toy ResNet, small enough to run in
a second. ``encode_proj_layers`` is Hugging Face's name for our ``attn_levels``: which
of the three maps get the AIFI transformer layer (``[2]``: S5 only, RT-DETR's choice).

:func:`hybrid_encoder_from_hf` carries the encoder's weights into our
:class:`~vitcourse.models.rtdetr.HybridEncoder`, name by name:
``model.encoder_input_proj.i`` → ``input_proj.i``, ``model.encoder.aifi.j`` →
``aifi.<level>`` (Q, K, V fused into our ``qkv``), ``lateral_convs``/``fpn_blocks``/
``downsample_convs``/``pan_blocks`` → CCFF's ``lateral``/``top_down``/``downsample``/
``bottom_up``, and a RepVGG block's ``conv1``/``conv2`` (3×3, 1×1) → ``conv3``/``conv1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..measure import time_call
from ..models.rtdetr import HybridEncoder, HybridEncoderConfig
from .mapping import ConversionError, Rule, build_uninitialised, import_state, load_exactly, refuse

__all__ = ["hf_encoder_latency", "hybrid_encoder_from_hf", "tiny_rtdetr"]

_WB = r"(weight|bias)"
_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_CCFF = {"lateral_convs": "lateral", "fpn_blocks": "top_down", "downsample_convs": "downsample",
         "pan_blocks": "bottom_up"}  # fmt: skip


def _rules(levels: Sequence[int]) -> list[Rule]:
    aifi = r"encoder\.aifi\.(\d+)\.layers\.(\d+)"

    def ours(rest: str):
        return lambda m: f"aifi.{levels[int(m.group(1))]}.layers.{m.group(2)}.{rest.format(*m.groups()[2:])}"

    rules = [
        Rule(r"encoder_input_proj\.(\d+)\.0\.weight", r"input_proj.\1.conv.weight"),
        Rule(rf"encoder_input_proj\.(\d+)\.1\.{_BN}", r"input_proj.\1.norm.\2"),
        *[Rule(rf"{aifi}\.self_attn\.{p}_proj\.{_WB}", ours("self_attn.qkv.{0}"), part=i)
          for i, p in enumerate("qkv")],
        Rule(rf"{aifi}\.self_attn\.o_proj\.{_WB}", ours("self_attn.proj.{0}")),
        Rule(rf"{aifi}\.self_attn_layer_norm\.{_WB}", ours("norm1.{0}")),
        Rule(rf"{aifi}\.(?:mlp\.)?(fc1|fc2)\.{_WB}", ours("mlp.{0}.{1}")),
        Rule(rf"{aifi}\.final_layer_norm\.{_WB}", ours("norm2.{0}")),
    ]
    for theirs, name in _CCFF.items():
        block = rf"encoder\.{theirs}\.(\d+)"
        rules += [
            Rule(rf"{block}\.conv\.weight", rf"ccff.{name}.\1.conv.weight"),
            Rule(rf"{block}\.norm\.{_BN}", rf"ccff.{name}.\1.norm.\2"),
            Rule(rf"{block}\.(conv1|conv2)\.conv\.weight", rf"ccff.{name}.\1.\2.conv.weight"),
            Rule(rf"{block}\.(conv1|conv2)\.norm\.{_BN}", rf"ccff.{name}.\1.\2.norm.\3"),
            Rule(rf"{block}\.bottlenecks\.(\d+)\.conv1\.(conv\.weight|norm\.{_BN})",
                 rf"ccff.{name}.\1.blocks.\2.conv3.\3"),
            Rule(rf"{block}\.bottlenecks\.(\d+)\.conv2\.(conv\.weight|norm\.{_BN})",
                 rf"ccff.{name}.\1.blocks.\2.conv1.\3"),
        ]  # fmt: skip
    return rules


def hybrid_encoder_from_hf(hf_model: nn.Module) -> HybridEncoder:
    """Our :class:`~vitcourse.models.rtdetr.HybridEncoder` with the weights of a Hugging Face RT-DETR's encoder.

    Args:
        hf_model: an ``RTDetrForObjectDetection`` or ``RTDetrModel`` (for instance
            :func:`tiny_rtdetr`, or ``PekingU/rtdetr_r50vd`` in ``full``).

    Returns:
        A :class:`HybridEncoder` that maps the backbone's maps S3, S4, S5 to what
        Hugging Face's ``encoder_input_proj`` then ``encoder`` give (its
        ``encoder_last_hidden_state``), in the source's train/eval mode.

    Raises:
        ConversionError: another class, activations or options ours doesn't have
            (pre-norm, a CSP expansion other than 1, a learned eval-size position
            code), or parameters that don't map one to one.
    """
    name = type(hf_model).__name__
    what = f"Hugging Face {name} encoder into vitcourse HybridEncoder"
    hint = "convert an RTDetrForObjectDetection (PekingU/rtdetr_r50vd) or tiny_rtdetr()"
    if name not in ("RTDetrForObjectDetection", "RTDetrModel"):
        refuse(what, [f"expected RTDetrForObjectDetection or RTDetrModel, got {name}"], hint)
    c = hf_model.config
    reasons = []
    if c.encoder_activation_function != "gelu" or c.activation_function != "silu":
        reasons.append(f"activations {c.encoder_activation_function!r}/{c.activation_function!r}: ours are GELU/SiLU")
    if c.normalize_before:
        reasons.append("normalize_before=True: our AIFI layer is post-norm")
    if c.hidden_expansion != 1.0:
        reasons.append(f"hidden_expansion={c.hidden_expansion}: our CSP layer keeps D channels")
    if c.eval_size is not None:
        reasons.append(f"eval_size={c.eval_size}: ours computes the position code for every map size")
    if c.encoder_hidden_dim != c.d_model:
        reasons.append("encoder_hidden_dim differs from d_model")
    if reasons:
        refuse(what, reasons, hint)
    levels = list(c.encode_proj_layers)
    try:
        config = HybridEncoderConfig(
            in_channels=tuple(c.encoder_in_channels), dim=c.encoder_hidden_dim, num_heads=c.encoder_attention_heads,
            mlp_dim=c.encoder_ffn_dim, num_layers=c.encoder_layers, attn_levels=tuple(levels),
            num_blocks=3,  # fixed in Hugging Face's CSP layer, as in RT-DETR
        )  # fmt: skip
    except ValueError as error:
        raise ConversionError(f"cannot convert {what}: {error}") from error
    prefix = "model." if name == "RTDetrForObjectDetection" else ""
    state = {k: v for k, v in hf_model.state_dict().items()
             if k.startswith((f"{prefix}encoder_input_proj.", f"{prefix}encoder."))}  # fmt: skip
    imported = import_state(state, _rules(levels), prefix=prefix)
    model = load_exactly(build_uninitialised(lambda: HybridEncoder(config)), imported, what, hint)
    return model.train(hf_model.training)


def tiny_rtdetr(encode_proj_layers: Sequence[int] = (2,), d_model: int = 64, num_labels: int = 8, seed: int = 0) -> nn.Module:
    """A random-weight ``RTDetrForObjectDetection``: toy ResNet (widths 32–256), D=64, 3 decoder layers, 30 queries.

    Args:
        encode_proj_layers: the levels (0: S3, 1: S4, 2: S5) with an AIFI layer.
        d_model: width of the encoder and decoder.
        num_labels: classes.
        seed: seed of the random weights (the global generator is left alone).

    Returns:
        The model, in eval mode.
    """
    from transformers import RTDetrConfig, RTDetrForObjectDetection, RTDetrResNetConfig

    backbone = RTDetrResNetConfig(
        embedding_size=16, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1], layer_type="bottleneck",
        out_features=["stage2", "stage3", "stage4"],
    )  # fmt: skip
    config = RTDetrConfig(
        backbone_config=backbone, encoder_in_channels=[64, 128, 256], encoder_hidden_dim=d_model,
        encoder_ffn_dim=4 * d_model, encoder_attention_heads=4, encode_proj_layers=list(encode_proj_layers),
        d_model=d_model, decoder_in_channels=[d_model] * 3, decoder_ffn_dim=4 * d_model, decoder_layers=3,
        decoder_attention_heads=4, num_queries=30, num_labels=num_labels, num_denoising=0,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RTDetrForObjectDetection(config).eval()


def hf_encoder_latency(image_size: int = 320, repeats: int = 5) -> dict[str, float]:
    """The whole tiny Hugging Face RT-DETR, AIFI on S5 against AIFI on every level: median CPU seconds.

    Returns:
        ``{"s5_cpu_seconds": …, "all_cpu_seconds": …, "cut": 1 − s5/all}``.
    """
    images = torch.rand(1, 3, image_size, image_size)
    out = {}
    for name, levels in (("s5", (2,)), ("all", (0, 1, 2))):
        model = tiny_rtdetr(levels)
        out[f"{name}_seconds"], out[f"{name}_cpu_seconds"] = time_call(
            lambda m=model: m(pixel_values=images), repeats=repeats
        )
    out["cut"] = 1 - out["s5_cpu_seconds"] / out["all_cpu_seconds"]
    return out
