"""Auto-labelling as the tools of class 6 do it: text → boxes → masks → a COCO data set.

* :func:`label_images`: a text-prompted detector (:func:`vitcourse.detection.detect`)
  finds boxes for the prompt's phrases, SAM turns every box into a mask;
* :func:`to_coco`: those labels (or the generated world's reference labels) as a COCO
  instance-segmentation data set (masks as RLE), which ``pycocotools`` loads;
* :func:`write_yolo` / :func:`read_yolo`: the same labels as a YOLO segmentation data set
  (polygons), read back with ``supervision``;
* :func:`to_label_studio`: Label Studio tasks with polygons; :func:`label_studio_to_coco`
  runs Label Studio's own converter on them;
* :func:`evaluate_labels`: the automatic labels against the reference ones: AP50 per
  class (boxes and masks, with ``pycocotools``), mIoU and Dice of the matched masks.
"""

from .label_studio import label_config, label_studio_to_coco, to_label_studio
from .pipeline import evaluate_labels, label_images, reference_labels, to_coco
from .yolo import read_yolo, write_yolo

__all__ = [
    "evaluate_labels",
    "label_config",
    "label_images",
    "label_studio_to_coco",
    "read_yolo",
    "reference_labels",
    "to_coco",
    "to_label_studio",
    "write_yolo",
]
