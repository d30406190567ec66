"""Detection: boxes, COCO average precision, NMS, phrases, and ``detect()`` (chapters 6 and 7).

* :mod:`.boxes`: ``xyxy`` ↔ ``cxcywh``, pixels ↔ fractions, IoU and GIoU;
* :mod:`.ap`: COCO's AP table, step by step (:func:`evaluate_detections`) and by
  ``pycocotools`` (:func:`coco_evaluate`);
* :mod:`.nms`: non-maximum suppression, a dense detector's duplicates, its cost;
* :mod:`.phrases`: noun phrases about the generated world, with held-out pairs;
* :mod:`.detect`: :func:`detect`, text prompts → boxes, scores, phrases (our mini
  model, or Grounding DINO);
* :mod:`.data`: the detection world, real tree crowns and PASCAL VOC photos.
"""

from .ap import COCO_METRICS, average_precision, coco_area_ranges, coco_evaluate, evaluate_detections
from .boxes import box_iou, cxcywh_to_xyxy, denormalize_boxes, generalized_box_iou, normalize_boxes, xyxy_to_cxcywh
from .detect import Detections, detect, load_detector, split_prompt
from .nms import dense_candidates, nms_timings, suppress

__all__ = [
    "COCO_METRICS",
    "Detections",
    "average_precision",
    "box_iou",
    "coco_area_ranges",
    "coco_evaluate",
    "cxcywh_to_xyxy",
    "dense_candidates",
    "denormalize_boxes",
    "detect",
    "evaluate_detections",
    "generalized_box_iou",
    "load_detector",
    "nms_timings",
    "normalize_boxes",
    "split_prompt",
    "suppress",
    "xyxy_to_cxcywh",
]
