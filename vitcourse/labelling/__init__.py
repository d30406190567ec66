"""Auto-labelling as the tools of class 6 do it: text → boxes → masks → a COCO data set.

* :func:`label_images`: a text-prompted detector (:func:`vitcourse.detection.detect`)
  finds boxes for the prompt's phrases, SAM turns every box into a mask;
* :func:`to_coco`: those labels (or the generated world's reference labels) as a COCO
  instance-segmentation data set (masks as RLE), which ``pycocotools`` loads;
* :func:`write_yolo` / :func:`read_yolo`: the same labels as a YOLO data set (boxes or
  polygons), read back with ``supervision``;
* :func:`to_label_studio`: Label Studio tasks with polygons; :func:`label_studio_to_coco`
  runs Label Studio's own converter on them;
* :mod:`.steps`: the same pipeline one step at a time (TP5's references): raw
  detector outputs → named pixel boxes, boxes → masks, box AP50 per class, the
  threshold sweep and the operating point;
* :func:`evaluate_labels`: the automatic labels against the reference ones: AP50 per
  class (boxes and masks, with ``pycocotools``), mIoU and Dice of the matched masks.
"""

from .label_studio import label_config, label_studio_to_coco, to_label_studio
from .pipeline import evaluate_labels, label_images, reference_labels, to_coco
from .steps import (
    Sam2BoxPredictor,
    SamBoxPredictor,
    box_ap50_per_class,
    choose_operating_point,
    detector_outputs,
    masks_from_boxes,
    match_counts,
    select_boxes,
    threshold_sweep,
)
from .yolo import read_yolo, write_yolo, yolo_lines

__all__ = [
    "Sam2BoxPredictor",
    "SamBoxPredictor",
    "box_ap50_per_class",
    "choose_operating_point",
    "detector_outputs",
    "evaluate_labels",
    "label_config",
    "label_images",
    "label_studio_to_coco",
    "masks_from_boxes",
    "match_counts",
    "read_yolo",
    "reference_labels",
    "select_boxes",
    "threshold_sweep",
    "to_coco",
    "to_label_studio",
    "write_yolo",
    "yolo_lines",
]
