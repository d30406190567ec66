"""ImageGPT's numbers (Chen et al. 2020, "Generative Pretraining from Pixels").

The course's slide gives the method (k-means palette, raster order, the autoregressive
density, GPT-2's blocks) and no table; the book compares its own presets with the
paper's model sizes and uses the paper's input format.
"""

from __future__ import annotations

from . import Source

__all__ = ["INPUT", "INPUT_SOURCE", "MODELS", "MODELS_SOURCE"]

_PAPER = dict(
    authors="Chen et al.",
    year=2020,
    title="Generative Pretraining from Pixels",
    bibkey="chen2020imagegpt",
)

MODELS_SOURCE = Source(**_PAPER, where="experimental setup (iGPT-S, -M, -L: 76M, 455M, 1.4B parameters)")
MODELS: list[dict] = [
    {"model": "iGPT-S", "depth": 24, "embed_dim": 512, "parameters": 76_000_000},
    {"model": "iGPT-M", "depth": 36, "embed_dim": 1024, "parameters": 455_000_000},
    {"model": "iGPT-L", "depth": 48, "embed_dim": 1536, "parameters": 1_400_000_000},
]
"""Blocks, width and parameter count (as rounded in the paper) of the released sizes."""

INPUT_SOURCE = Source(**_PAPER, where="context reduction (9-bit palette: k-means with k = 512)")
INPUT: dict = {"palette_colors": 512, "side": 32, "sequence_length": 32 * 32}
"""Images reduced to 32×32 and to a 512-colour (9-bit) palette found by k-means on
(R, G, B) pixels: sequences of 1024 tokens."""
