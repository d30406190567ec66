"""AugReg (Steiner et al., 2022): ImageNet-1k accuracy by augmentation and regularisation.

The grid is the one the class-2 slides show ("ImageNet-1k, 300ep"; "No regularization",
"Regularization 0.1"), which the slides take from the paper's study: top-1 accuracy (%,
rounded to integers as on the slides) of each model trained for 300 epochs on
ImageNet-1k with seven augmentation levels, without regularisation and with dropout and
stochastic depth 0.1.
"""

from __future__ import annotations

from . import Source

__all__ = ["EPOCHS", "GRID", "GRID_SOURCE", "LEVELS", "REGULARISATION"]

GRID_SOURCE = Source(
    authors="Steiner et al.",
    year=2022,
    title="How to train your ViT? Data, Augmentation, and Regularization in Vision Transformers",
    where="the ImageNet-1k, 300-epoch grid as reproduced in the class-2 slides",
    arxiv="2106.10270",
    bibkey="steiner2022augreg",
)

EPOCHS = 300
"""Training epochs on ImageNet-1k behind every cell of :data:`GRID`."""

REGULARISATION = 0.1
"""The dropout and stochastic-depth rate of the regularised half of :data:`GRID`."""

LEVELS: tuple[str, ...] = ("none", "light1", "light2", "med1", "med2", "heavy1", "heavy2")
"""Augmentation levels, from none to heavy (combinations of RandAugment and MixUp)."""

GRID: dict[str, list[int]] = {
    "RTi": [69, 73, 73, 72, 70, 69, 68, 71, 70, 67, 65, 63, 62, 61],
    "Ti/16": [72, 76, 75, 75, 74, 72, 71, 71, 72, 68, 65, 63, 63, 62],
    "S/32": [64, 71, 76, 76, 76, 74, 74, 70, 72, 72, 71, 71, 69, 68],
    "S/16": [71, 77, 79, 81, 82, 80, 80, 76, 79, 80, 79, 79, 77, 77],
    "B/32": [63, 70, 73, 75, 76, 75, 76, 69, 74, 77, 77, 78, 77, 77],
    "R26S": [72, 76, 78, 79, 80, 80, 80, 75, 78, 81, 82, 82, 81, 81],
    "B/16": [70, 76, 79, 79, 81, 80, 80, 76, 79, 81, 82, 83, 82, 82],
    "L/16": [69, 76, 77, 78, 78, 76, 76, 74, 78, 78, 78, 79, 77, 77],
    "R50L": [70, 75, 76, 77, 77, 76, 76, 75, 78, 78, 78, 79, 77, 77],
}
"""Model → 14 accuracies: the seven :data:`LEVELS` without regularisation, then with 0.1."""
