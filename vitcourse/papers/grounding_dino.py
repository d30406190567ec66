"""Grounding DINO on COCO, zero-shot and fine-tuned, as the course's slide shows it (Liu et al. 2024).

The COCO table of "Grounding DINO: Marrying DINO with Grounded Pre-Training for
Open-Set Object Detection": backbone, pre-training data, AP on val2017 without any
COCO training (*zero-shot*) and after fine-tuning (val2017 / test-dev), in %.
``None`` marks empty cells (closed-set models have no zero-shot number; many report
no test-dev). Footnotes of the paper: † DyHead-T and DINO(Swin-T) trained on O365 by
the Grounding DINO authors; Grounding DINO L's last zero-shot number (†) saw COCO
during pre-training, so it is not zero-shot; the fine-tuned L in parentheses used a
larger image size (``finetune_note``).
"""

from __future__ import annotations

from . import Source

__all__ = ["GROUNDING_DINO_COCO", "GROUNDING_DINO_COCO_SOURCE"]

GROUNDING_DINO_COCO_SOURCE = Source(
    authors="Liu et al.",
    year=2024,
    title="Grounding DINO: Marrying DINO with Grounded Pre-Training for Open-Set Object Detection",
    where="COCO results table (zero-shot and fine-tuned, val2017 / test-dev)",
    arxiv="2303.05499",
    bibkey="liu2024groundingdino",
)

_COLUMNS = ("model", "backbone", "pretraining", "zero_shot", "finetune_val", "finetune_testdev")
_ROWS = [
    ("Faster R-CNN", "RN50-FPN", None, None, 40.2, None),
    ("Faster R-CNN", "RN101-FPN", None, None, 42.0, None),
    ("DyHead-T", "Swin-T", None, None, 49.7, None),
    ("DyHead-L", "Swin-L", None, None, 58.4, 58.7),
    ("DyHead-L", "Swin-L", "O365,ImageNet21K", None, 60.3, 60.6),
    ("SoftTeacher", "Swin-L", "O365,SS-COCO", None, 60.7, 61.3),
    ("DINO(Swin-L)", "Swin-L", "O365", None, 62.5, None),
    ("DyHead-T†", "Swin-T", "O365", 43.6, 53.3, None),
    ("GLIP-T (B)", "Swin-T", "O365", 44.9, 53.8, None),
    ("GLIP-T (C)", "Swin-T", "O365,GoldG", 46.7, 55.1, None),
    ("GLIP-L", "Swin-L", "FourODs,GoldG,Cap24M", 49.8, 60.8, 61.0),
    ("DINO(Swin-T)†", "Swin-T", "O365", 46.2, 56.9, None),
    ("Grounding DINO T", "Swin-T", "O365", 46.7, 56.9, None),
    ("Grounding DINO T", "Swin-T", "O365,GoldG", 48.1, 57.1, None),
    ("Grounding DINO T", "Swin-T", "O365,GoldG,Cap4M", 48.4, 57.2, None),
    ("Grounding DINO L", "Swin-L", "O365,OI,GoldG", 52.5, 62.6, 62.7),
    ("Grounding DINO L", "Swin-L", "O365,OI,GoldG,Cap4M,COCO,RefC", 60.7, 62.6, None),
]
GROUNDING_DINO_COCO: list[dict] = [
    dict(zip(_COLUMNS, row), zero_shot_is_zero_shot="COCO" not in (row[2] or "")) for row in _ROWS
]
"""One dict per row; ``zero_shot_is_zero_shot`` is False where the pre-training saw COCO."""

FINETUNE_NOTE = "Grounding DINO L, O365,OI,GoldG: 63.0 / 63.0 with a larger image size (the paper's *)"
