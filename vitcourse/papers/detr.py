"""DETR against Faster R-CNN on COCO, as the course's slide shows it (Carion et al. 2020).

Table 1 of "End-to-End Object Detection with Transformers": COCO 2017 validation,
GFLOPs and FPS (the slide writes them as ``GFLOPS/FPS``; FPS on a V100), parameters
in millions, and the six COCO numbers in %. The ``+`` rows are Faster R-CNN trained
longer with GIoU and augmentation, DETR's own recipe. The book reads the table from
here and plots AP against speed and AP by object size.
"""

from __future__ import annotations

from . import Source

__all__ = ["DETR_COCO", "DETR_COCO_SOURCE", "DETR_PARAMETERS_M", "DETR_TRAINING", "DETR_TRAINING_SOURCE"]

DETR_COCO_SOURCE = Source(
    authors="Carion et al.",
    year=2020,
    title="End-to-End Object Detection with Transformers",
    where="Table 1 (COCO val2017)",
    arxiv="2005.12872",
    bibkey="carion2020detr",
)

_COLUMNS = ("model", "gflops", "fps", "params_m", "AP", "AP50", "AP75", "APs", "APm", "APl")
_ROWS = [
    ("Faster RCNN-DC5", 320, 16, 166, 39.0, 60.5, 42.3, 21.4, 43.5, 52.5),
    ("Faster RCNN-FPN", 180, 26, 42, 40.2, 61.0, 43.8, 24.2, 43.5, 52.0),
    ("Faster RCNN-R101-FPN", 246, 20, 60, 42.0, 62.5, 45.9, 25.2, 45.6, 54.6),
    ("Faster RCNN-DC5+", 320, 16, 166, 41.1, 61.4, 44.3, 22.9, 45.9, 55.0),
    ("Faster RCNN-FPN+", 180, 26, 42, 42.0, 62.1, 45.5, 26.6, 45.4, 53.4),
    ("Faster RCNN-R101-FPN+", 246, 20, 60, 44.0, 63.9, 47.8, 27.2, 48.1, 56.0),
    ("DETR", 86, 28, 41, 42.0, 62.4, 44.2, 20.5, 45.8, 61.1),
    ("DETR-DC5", 187, 12, 41, 43.3, 63.1, 45.9, 22.5, 47.3, 61.1),
    ("DETR-R101", 152, 20, 60, 43.5, 63.8, 46.4, 21.9, 48.0, 61.8),
    ("DETR-DC5-R101", 253, 10, 60, 44.9, 64.7, 47.7, 23.7, 49.5, 62.3),
]
DETR_COCO: list[dict] = [dict(zip(_COLUMNS, row)) for row in _ROWS]
"""One dict per model: GFLOPs, FPS, parameters (M) and AP, AP50, AP75, APs, APm, APl (%)."""

DETR_PARAMETERS_M: int = 41
"""DETR-R50's parameters in millions, as the paper and the slide round them."""

DETR_TRAINING_SOURCE = Source(
    authors="Carion et al.",
    year=2020,
    title="End-to-End Object Detection with Transformers",
    where="Section 4 (training details) and Table 1",
    arxiv="2005.12872",
    bibkey="carion2020detr",
)
DETR_TRAINING: dict = {"epochs_long": 500, "epochs_baseline": 300, "gpus": 16, "gpu": "V100", "days_300_epochs": 3}
"""How DETR was trained on COCO: 300 epochs (3 days on 16 V100 GPUs) for the ablations, 500 for Table 1."""
