"""MAE's ablation tables as the course's slides show them (He et al. 2022).

Three tables of "Masked Autoencoders Are Scalable Vision Learners": the decoder's depth
and width (Table 1a, 1b: ViT-L/16 pre-trained on ImageNet-1K for 800 epochs, then
fine-tuned, ``ft``, or linearly probed, ``lin``; top-1 accuracy in %), and the
wall-clock pre-training time (Table 2: 800 epochs on 128 TPU-v3 cores; the speed-up is
relative to the encoder that also processes the mask tokens, "w/ [M]").

The slides reproduce the three tables with the same numbers; the book reads them from
here. ``None`` marks the cells the paper leaves empty (ViT-H w/ [M] was not fine-tuned;
its time, marked †, is estimated from ten epochs).
"""

from __future__ import annotations

from . import Source

__all__ = [
    "DECODER_DEPTH",
    "DECODER_DEPTH_SOURCE",
    "DECODER_WIDTH",
    "DECODER_WIDTH_SOURCE",
    "MASK_RATIO",
    "WALL_CLOCK",
    "WALL_CLOCK_SOURCE",
]

_PAPER = dict(
    authors="He et al.",
    year=2022,
    title="Masked Autoencoders Are Scalable Vision Learners",
    arxiv="2111.06377",
    bibkey="he2022mae",
)

MASK_RATIO: float = 0.75
"""The fraction of patches hidden during pre-training (the paper's default and the slides')."""

DECODER_DEPTH_SOURCE = Source(**_PAPER, where="Table 1a (decoder depth; ViT-L/16, IN-1K)")
DECODER_DEPTH: list[dict] = [
    {"blocks": 1, "ft": 84.8, "lin": 65.5},
    {"blocks": 2, "ft": 84.9, "lin": 70.0},
    {"blocks": 4, "ft": 84.9, "lin": 71.9},
    {"blocks": 8, "ft": 84.9, "lin": 73.5},
    {"blocks": 12, "ft": 84.4, "lin": 73.3},
]
"""Decoder depth (blocks) → fine-tuning and linear-probing top-1 (%); the default is 8."""

DECODER_WIDTH_SOURCE = Source(**_PAPER, where="Table 1b (decoder width; ViT-L/16, IN-1K)")
DECODER_WIDTH: list[dict] = [
    {"dim": 128, "ft": 84.9, "lin": 69.1},
    {"dim": 256, "ft": 84.8, "lin": 71.3},
    {"dim": 512, "ft": 84.9, "lin": 73.5},
    {"dim": 768, "ft": 84.4, "lin": 73.1},
    {"dim": 1024, "ft": 84.3, "lin": 73.1},
]
"""Decoder width (channels) → fine-tuning and linear-probing top-1 (%); the default is 512,
half of ViT-L's 1024."""

WALL_CLOCK_SOURCE = Source(**_PAPER, where="Table 2 (wall-clock time, 800 epochs, 128 TPU-v3 cores)")
WALL_CLOCK: list[dict] = [
    {"encoder": "ViT-L, w/ [M]", "dec_depth": 8, "ft_acc": 84.2, "hours": 42.4, "speedup": None},
    {"encoder": "ViT-L", "dec_depth": 8, "ft_acc": 84.9, "hours": 15.4, "speedup": 2.8},
    {"encoder": "ViT-L", "dec_depth": 1, "ft_acc": 84.8, "hours": 11.6, "speedup": 3.7},
    {"encoder": "ViT-H, w/ [M]", "dec_depth": 8, "ft_acc": None, "hours": 119.6, "speedup": None},
    {"encoder": "ViT-H", "dec_depth": 8, "ft_acc": 85.8, "hours": 34.5, "speedup": 3.5},
    {"encoder": "ViT-H", "dec_depth": 1, "ft_acc": 85.9, "hours": 29.3, "speedup": 4.1},
]
"""Pre-training hours and speed-up over the encoder that processes mask tokens; the
ViT-H w/ [M] time is estimated (the paper's †)."""
