"""RT-DETR against real-time YOLOs and end-to-end DETRs, as the course's slide shows it (Zhao et al. 2024).

The results table of "DETRs Beat YOLOs on Real-time Object Detection" on COCO
val2017: training epochs, parameters (M), GFLOPs, FPS at batch size 1 on a T4 GPU
with TensorRT FP16, and the six COCO numbers in %. ``None`` marks cells the paper
leaves empty (``-``): the YOLOs report no size breakdown or no epochs, most DETRs no
FPS. The slide also quotes the paper's claim that AIFI, attention on S5 alone,
cuts the encoder's latency by 35 % (:data:`AIFI_LATENCY_CUT`), which the book sets
next to the ratio it measures on a tiny hybrid encoder.
"""

from __future__ import annotations

from . import Source

__all__ = ["AIFI_LATENCY_CUT", "AIFI_LATENCY_CUT_SOURCE", "RTDETR_COCO", "RTDETR_COCO_SOURCE"]

_PAPER = dict(
    authors="Zhao et al.",
    year=2024,
    title="DETRs Beat YOLOs on Real-time Object Detection",
    arxiv="2304.08069",
    bibkey="zhao2024rtdetr",
)

RTDETR_COCO_SOURCE = Source(**_PAPER, where="main results table (COCO val2017; FPS at batch 1, T4, TensorRT FP16)")

_COLUMNS = ("model", "family", "backbone", "epochs", "params_m", "gflops", "fps",
            "AP", "AP50", "AP75", "APs", "APm", "APl")  # fmt: skip
_ROWS = [
    ("YOLOv5-L", "real-time", None, 300, 46, 109, 54, 49.0, 67.3, None, None, None, None),
    ("YOLOv5-X", "real-time", None, 300, 86, 205, 43, 50.7, 68.9, None, None, None, None),
    ("PPYOLOE-L", "real-time", None, 300, 52, 110, 94, 51.4, 68.9, 55.6, 31.4, 55.3, 66.1),
    ("PPYOLOE-X", "real-time", None, 300, 98, 206, 60, 52.3, 69.9, 56.5, 33.3, 56.3, 66.4),
    ("YOLOv6-L", "real-time", None, 300, 59, 150, 99, 52.8, 70.3, 57.7, 34.4, 58.1, 70.1),
    ("YOLOv7-L", "real-time", None, 300, 36, 104, 55, 51.2, 69.7, 55.5, 35.2, 55.9, 66.7),
    ("YOLOv7-X", "real-time", None, 300, 71, 189, 45, 52.9, 71.1, 57.4, 36.9, 57.7, 68.6),
    ("YOLOv8-L", "real-time", None, None, 43, 165, 71, 52.9, 69.8, 57.5, 35.3, 58.3, 69.8),
    ("YOLOv8-X", "real-time", None, None, 68, 257, 50, 53.9, 71.0, 58.7, 35.7, 59.3, 70.7),
    ("DETR-DC5", "end-to-end", "R50", 500, 41, 187, None, 43.3, 63.1, 45.9, 22.5, 47.3, 61.1),
    ("DETR-DC5", "end-to-end", "R101", 500, 60, 253, None, 44.9, 64.7, 47.7, 23.7, 49.5, 62.3),
    ("Anchor-DETR-DC5", "end-to-end", "R50", 50, 39, 172, None, 44.2, 64.7, 47.5, 24.7, 48.2, 60.6),
    ("Anchor-DETR-DC5", "end-to-end", "R101", 50, None, None, None, 45.1, 65.7, 48.8, 25.8, 49.4, 61.6),
    ("Conditional-DETR-DC5", "end-to-end", "R50", 108, 44, 195, None, 45.1, 65.4, 48.5, 25.3, 49.0, 62.2),
    ("Conditional-DETR-DC5", "end-to-end", "R101", 108, 63, 262, None, 45.9, 66.8, 49.5, 27.2, 50.3, 63.3),
    ("Efficient-DETR", "end-to-end", "R50", 36, 35, 210, None, 45.1, 63.1, 49.1, 28.3, 48.4, 59.0),
    ("Efficient-DETR", "end-to-end", "R101", 36, 54, 289, None, 45.7, 64.1, 49.5, 28.2, 49.1, 60.2),
    ("SMCA-DETR", "end-to-end", "R50", 108, 40, 152, None, 45.6, 65.5, 49.1, 25.9, 49.3, 62.6),
    ("SMCA-DETR", "end-to-end", "R101", 108, 58, 218, None, 46.3, 66.6, 50.2, 27.2, 50.5, 63.2),
    ("Deformable-DETR", "end-to-end", "R50", 50, 40, 173, None, 46.2, 65.2, 50.0, 28.8, 49.2, 61.7),
    ("DAB-Deformable-DETR", "end-to-end", "R50", 50, 48, 195, None, 46.9, 66.0, 50.8, 30.1, 50.4, 62.5),
    ("DAB-Deformable-DETR++", "end-to-end", "R50", 50, 47, None, None, 48.7, 67.2, 53.0, 31.4, 51.6, 63.9),
    ("DN-Deformable-DETR", "end-to-end", "R50", 50, 48, 195, None, 48.6, 67.4, 52.7, 31.0, 52.0, 63.7),
    ("DN-Deformable-DETR++", "end-to-end", "R50", 50, 47, None, None, 49.5, 67.6, 53.8, 31.3, 52.6, 65.4),
    ("DINO-Deformable-DETR", "end-to-end", "R50", 36, 47, 279, 5, 50.9, 69.0, 55.3, 34.6, 54.1, 64.6),
    ("RT-DETR", "RT-DETR", "R50", 72, 42, 136, 108, 53.1, 71.3, 57.7, 34.8, 58.0, 70.0),
    ("RT-DETR", "RT-DETR", "R101", 72, 76, 259, 74, 54.3, 72.7, 58.6, 36.0, 58.8, 72.1),
]
RTDETR_COCO: list[dict] = [dict(zip(_COLUMNS, row)) for row in _ROWS]
"""One dict per model; ``family`` is the slide's group: real-time (YOLO), end-to-end (DETRs), RT-DETR."""

AIFI_LATENCY_CUT_SOURCE = Source(**_PAPER, where="Section 4.2 (efficient hybrid encoder), as the course's slide quotes it")
AIFI_LATENCY_CUT: float = 0.35
"""Attention on S5 only (AIFI) instead of on every scale: the encoder's latency falls by 35 %."""
