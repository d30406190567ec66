"""Swin (Liu et al., 2021) and Swin-V2 (Liu et al., 2022): the numbers chapter 2 cites."""

from __future__ import annotations

from . import Source

__all__ = [
    "IMAGENET",
    "IMAGENET_SOURCE",
    "POSITIONS",
    "POSITIONS_SOURCE",
    "V2_SCALE",
    "V2_SCALE_SOURCE",
]

_SWIN = dict(
    authors="Liu et al.",
    year=2021,
    title="Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
    arxiv="2103.14030",
    bibkey="liu2021swin",
)

IMAGENET_SOURCE = Source(where="Table 1(a), ImageNet-1k at 224 px; throughput in images/s on a V100", **_SWIN)
IMAGENET: list[dict] = [
    {"model": "Swin-T", "preset": "swin_tiny_patch4_window7_224", "params": "28M", "gflops": 4.5,
     "throughput": 755.2, "top1": 81.3},
    {"model": "Swin-S", "preset": "swin_small_patch4_window7_224", "params": "50M", "gflops": 8.7,
     "throughput": 436.9, "top1": 83.0},
    {"model": "Swin-B", "preset": "swin_base_patch4_window7_224", "params": "88M", "gflops": 15.4,
     "throughput": 278.1, "top1": 83.5},
    {"model": "DeiT-S", "preset": "deit_small_patch16_224", "params": "22M", "gflops": 4.6,
     "throughput": 940.4, "top1": 79.8},
    {"model": "DeiT-B", "preset": "deit_base_patch16_224", "params": "86M", "gflops": 17.5,
     "throughput": 292.3, "top1": 81.8},
]  # fmt: skip
"""Parameters, GFLOPs (the paper counts multiply-adds), throughput and top-1 accuracy (%)."""

POSITIONS_SOURCE = Source(where="Table 4 (ablation on Swin-T with shifted windows, ImageNet-1k top-1)", **_SWIN)
POSITIONS: dict[str, float] = {"no pos.": 80.1, "abs. pos.": 80.5, "abs.+rel. pos.": 81.3, "rel. pos.": 81.3}
"""Top-1 accuracy (%) of Swin-T with each kind of position information."""

V2_SCALE_SOURCE = Source(
    authors="Liu et al.",
    year=2022,
    title="Swin Transformer V2: Scaling Up Capacity and Resolution",
    where="Abstract",
    arxiv="2111.09883",
    bibkey="liu2022swinv2",
)
V2_SCALE: dict[str, float] = {"params": 3e9, "max_resolution": 1536}
"""Swin-V2's largest model: 3 billion parameters, images of up to 1,536×1,536 pixels."""
