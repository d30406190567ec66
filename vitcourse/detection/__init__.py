"""Detection utilities: boxes, average precision, and the text-prompted ``detect``."""

from .boxes import box_iou, cxcywh_to_xyxy, denormalize_boxes, generalized_box_iou, normalize_boxes, xyxy_to_cxcywh

__all__ = [
    "box_iou",
    "cxcywh_to_xyxy",
    "denormalize_boxes",
    "generalized_box_iou",
    "normalize_boxes",
    "xyxy_to_cxcywh",
]
