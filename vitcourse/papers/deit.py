"""DeiT (Touvron et al., 2021): model sizes and ImageNet-1k accuracy with and without distillation."""

from __future__ import annotations

from . import Source

__all__ = ["MODELS", "MODELS_SOURCE", "RESULTS", "RESULTS_SOURCE", "TEACHER", "TEACHER_SOURCE"]

_DEIT = dict(
    authors="Touvron et al.",
    year=2021,
    title="Training data-efficient image transformers & distillation through attention",
    arxiv="2012.12877",
    bibkey="touvron2021deit",
)

MODELS_SOURCE = Source(where="Table 1", **_DEIT)
MODELS: list[dict] = [
    {"model": "DeiT-Ti", "layers": 12, "hidden_size": 192, "mlp_size": 768, "heads": 3, "params": "5M"},
    {"model": "DeiT-S", "layers": 12, "hidden_size": 384, "mlp_size": 1536, "heads": 6, "params": "22M"},
    {"model": "DeiT-B", "layers": 12, "hidden_size": 768, "mlp_size": 3072, "heads": 12, "params": "86M"},
]
"""The sizes DeiT adds to ViT's (Tiny and Small); DeiT-B is ViT-B."""

RESULTS_SOURCE = Source(where="Table 5 (ImageNet-1k only, 224 px; ⚗: with the distillation token)", **_DEIT)
RESULTS: list[dict] = [
    {"size": "Ti", "params": "5M", "DeiT": 72.2, "DeiT⚗": 74.5},
    {"size": "S", "params": "22M", "DeiT": 79.8, "DeiT⚗": 81.2},
    {"size": "B", "params": "86M", "DeiT": 81.8, "DeiT⚗": 83.4},
]
"""Top-1 accuracy (%) on ImageNet-1k, trained on ImageNet-1k only."""

TEACHER_SOURCE = Source(where="Table 2 (the teacher: RegNetY-16GF)", **_DEIT)
TEACHER: dict[str, float] = {"RegNetY-16GF": 82.9}
"""Top-1 accuracy (%) of the CNN teacher DeiT distils from."""
