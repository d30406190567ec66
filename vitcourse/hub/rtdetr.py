"""Hugging Face's ``RTDetrForObjectDetection`` at a tiny size, offline, next to our hybrid encoder.

``PekingU/rtdetr_r50vd`` is RT-DETR as published; offline, :func:`tiny_rtdetr` builds
the same architecture with random weights and a toy ResNet, small enough to run in
a second. ``encode_proj_layers`` is Hugging Face's name for our ``attn_levels``: which
of the three maps get the AIFI transformer layer (``[2]``: S5 only, RT-DETR's choice).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..measure import time_call

__all__ = ["hf_encoder_latency", "tiny_rtdetr"]


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
