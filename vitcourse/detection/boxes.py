"""Boxes: the formats detectors use and the overlap measures between them.

Three ways to write the same box, all in this package:

* ``xyxy``: corners ``(x0, y0, x1, y1)`` in pixels (COCO's results, torchvision, the
  generated world's annotations);
* ``xywh``: corner and size ``(x0, y0, w, h)`` in pixels (COCO's annotation files);
* ``cxcywh``: centre and size, as fractions of the image side, in ``[0, 1]`` (what
  DETR predicts: a network outputs numbers of the same scale whatever the image size).

IoU and the generalised IoU (GIoU) of Rezatofighi et al. (2019) come from
``torchvision.ops``; GIoU is what DETR's loss and matching cost use because, unlike
IoU, it still has a gradient when two boxes don't overlap.
"""

from __future__ import annotations

import torch
from torchvision.ops import box_convert, box_iou, generalized_box_iou

__all__ = [
    "box_iou",
    "cxcywh_to_xyxy",
    "generalized_box_iou",
    "normalize_boxes",
    "xyxy_to_cxcywh",
    "denormalize_boxes",
]


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` centre-size boxes → corner boxes, same units."""
    return box_convert(boxes, "cxcywh", "xyxy")


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` corner boxes → centre-size boxes, same units."""
    return box_convert(boxes, "xyxy", "cxcywh")


def _scale(size: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    height, width = size
    return torch.tensor([width, height, width, height], dtype=like.dtype, device=like.device)


def normalize_boxes(boxes_xyxy: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pixel corner boxes ``(K, 4)`` of an ``(H, W)`` image → DETR's ``cxcywh`` in ``[0,
    1]``.
    """
    if boxes_xyxy.ndim != 2 or boxes_xyxy.shape[-1] != 4:
        raise ValueError(f"expected boxes shaped (K, 4), got {tuple(boxes_xyxy.shape)}")
    return xyxy_to_cxcywh(boxes_xyxy.float()) / _scale(size, boxes_xyxy.float())


def denormalize_boxes(boxes_cxcywh: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """DETR's ``(..., 4)`` ``cxcywh`` in ``[0, 1]`` → pixel corner boxes of an ``(H, W)`` image."""
    return cxcywh_to_xyxy(boxes_cxcywh) * _scale(size, boxes_cxcywh)
