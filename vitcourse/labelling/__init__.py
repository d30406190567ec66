"""Auto-labelling as the tools of class 6 do it: text → boxes → masks → a COCO data set.

* :func:`label_images`: a text-prompted detector (:func:`vitcourse.detection.detect`)
  finds boxes for the prompt's phrases, SAM turns every box into a mask;
* :func:`to_coco`: those labels (or the generated world's reference labels) as a COCO
  instance-segmentation data set (masks as RLE), which ``pycocotools`` loads;
* :func:`write_yolo` / :func:`read_yolo`: the same labels as a YOLO segmentation data set
  (polygons), read back with ``supervision``;
* :func:`evaluate_labels`: the automatic labels against the reference ones: AP50 per
  class (boxes and masks, with ``pycocotools``), mIoU and Dice of the matched masks.
"""

from .pipeline import evaluate_labels, label_images, reference_labels, to_coco
from .yolo import read_yolo, write_yolo

__all__ = ["evaluate_labels", "label_images", "read_yolo", "reference_labels", "to_coco", "write_yolo"]
