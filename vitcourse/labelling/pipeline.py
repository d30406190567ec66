"""Text prompt → boxes (a detector) → masks (SAM) → COCO, and the labels' quality."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = ["evaluate_labels", "label_images", "reference_labels", "to_coco"]


@torch.no_grad()
def label_images(
    images: torch.Tensor,
    phrases: Sequence[str],
    sam: torch.nn.Module,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    box_threshold: float = 0.35,
    text_threshold: float = 0.25,
    detector=None,
) -> list[list[dict]]:
    """Label every image: boxes for the phrases, then one SAM mask per box.

    Args:
        images: ``(N, 3, S, S)`` in ``[0, 1]``.
        phrases: what to look for, one class per phrase (``["círculo", "estrella"]``).
        sam: a :class:`~vitcourse.models.Sam` for ``S × S`` inputs.
        prepare: turns images into SAM's input (its normalisation).
        box_threshold: the detector's least score for a box.
        text_threshold: the least phrase probability to name a box; unnamed boxes are
            dropped (a data set needs a class).
        detector: for :func:`vitcourse.detection.detect` (default: the profile's).

    Returns:
        Per image, a list of ``{"label", "phrase", "score", "box", "mask"}``: class
        index into ``phrases``, its text, the detector's score, the box ``(x0, y0, x1,
        y1)`` in pixels and a ``(S, S)`` bool mask.
    """
    from ..detection import detect
    from .steps import SamBoxPredictor, masks_from_boxes

    found_all = detect(
        images, list(phrases), box_threshold, text_threshold, detector=detector
    )  # fmt: skip
    predictor = SamBoxPredictor(sam, prepare)
    labelled = []
    for image, found in zip(images, found_all):
        named = found.labels >= 0  # a data set needs a class: drop unnamed boxes
        boxes, labels = found.boxes[named], found.labels[named]
        scores = found.scores[named]
        # SAM encodes the image once and answers every box at once: (K, S, S);
        # no box, no mask (and no encoding)
        masks = masks_from_boxes(predictor, image, boxes)
        rows = []
        for c, s, b, m in zip(labels.tolist(), scores.tolist(), boxes, masks):
            row = {"label": c, "phrase": phrases[c], "score": s}
            rows.append({**row, "box": b.tolist(), "mask": m})
        labelled.append(rows)
    return labelled


def reference_labels(masks: Sequence[torch.Tensor], labels: Sequence[torch.Tensor]) -> list[list[dict]]:
    """The generated world's own labels in :func:`label_images`'s format (score 1)."""
    out = []
    for image_masks, image_labels in zip(masks, labels):
        rows = []
        for mask, label in zip(image_masks, image_labels):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
            rows.append({"label": int(label), "phrase": "", "score": 1.0, "box": box, "mask": mask})
        out.append(rows)
    return out


def to_coco(
    labels: Sequence[Sequence[dict]], categories: Sequence[str], image_size: int | Sequence[tuple[int, int]]
) -> dict:
    """Labels as a COCO instance-segmentation data set (masks as RLE).

    Args:
        labels: per image, the rows of :func:`label_images` or :func:`reference_labels`
            (a row without ``mask``, or with ``None``, is a box alone: ``area`` is the
            box's, no ``segmentation``).
        categories: class names; category ``i + 1`` is ``categories[i]``.
        image_size: side of the square images, or one ``(height, width)`` per image.

    Returns:
        A COCO dictionary (``images``, ``annotations`` with ``bbox`` ``[x, y, w, h]``,
        ``area``, ``segmentation``, ``score``; ``categories``), JSON-serialisable.
    """
    from pycocotools import mask as mask_utils

    sizes = [(image_size, image_size)] * len(labels) if isinstance(image_size, int) else list(image_size)
    if len(sizes) != len(labels):
        raise ValueError(
            f"got {len(labels)} images of labels but {len(sizes)} image sizes; pass one (height, width) each"
        )
    images, annotations = [], []
    for index, (rows, (height, width)) in enumerate(zip(labels, sizes)):
        images.append({"id": index + 1, "width": int(width), "height": int(height), "file_name": f"{index:05d}.png"})
        for row in rows:
            x0, y0, x1, y1 = (float(v) for v in row["box"])
            annotation = {
                "id": len(annotations) + 1,
                "image_id": index + 1,
                "category_id": int(row["label"]) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "iscrowd": 0,
                "score": float(row.get("score", 1.0)),
            }  # fmt: skip
            if row.get("mask") is not None:
                rle = mask_utils.encode(np.asfortranarray(row["mask"].numpy().astype(np.uint8)))
                rle["counts"] = rle["counts"].decode("ascii")
                annotation.update(area=float(row["mask"].sum()), segmentation=rle)
            annotations.append(annotation)
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(categories)],
    }


def _coco(dataset: dict):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _ap50_per_class(reference: dict, predicted: dict, iou_type: str) -> dict[str, float]:
    """pycocotools' AP at IoU 0.5 per category (NaN for a class absent from the reference)."""
    from pycocotools.cocoeval import COCOeval

    gt = _coco(reference)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(predicted["annotations"]) if predicted["annotations"] else None
        if dt is None:
            return {c["name"]: 0.0 for c in reference["categories"]}
        evaluation = COCOeval(gt, dt, iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][0, :, :, 0, -1]  # (recall, class) at IoU 0.5, all areas
    out = {}
    for k, category in enumerate(reference["categories"]):
        column = precision[:, k]
        out[category["name"]] = float(column[column > -1].mean()) if (column > -1).any() else float("nan")
    return out


def evaluate_labels(reference: dict, predicted: dict) -> dict:
    """Automatic labels against reference labels, both COCO data sets of :func:`to_coco`.

    Returns:
        ``{"box_ap50": {class: AP50}, "mask_ap50": {…}, "miou": …, "dice": …,
        "found": …, "reference": …, "predicted": …}``: per reference instance, its best
        mask of the same class in the same image (IoU 0 if none); ``miou`` and ``dice``
        average those, ``found`` counts the ones at IoU ≥ 0.5 (recall = found /
        reference); ``correct`` counts the predictions matched one to one, at IoU ≥ 0.5,
        to a reference instance of their class (precision = correct / predicted).
    """
    from pycocotools import mask as mask_utils

    ious, dices = [], []
    by_image: dict[tuple[int, int], list] = {}
    for a in predicted["annotations"]:
        by_image.setdefault((a["image_id"], a["category_id"]), []).append(mask_utils.decode(a["segmentation"]))
    references: dict[tuple[int, int], list] = {}
    for a in reference["annotations"]:
        references.setdefault((a["image_id"], a["category_id"]), []).append(mask_utils.decode(a["segmentation"]))
    correct = 0  # predictions matched one to one (best score first) to a reference at IoU >= 0.5
    for key, candidates in by_image.items():
        free = list(references.get(key, []))
        for candidate in candidates:  # label_images lists them by descending score
            for i, target in enumerate(free):
                inter = (candidate & target).sum()
                if inter / max((candidate | target).sum(), 1) >= 0.5:
                    correct += 1
                    free.pop(i)
                    break
    for a in reference["annotations"]:
        target = mask_utils.decode(a["segmentation"]).astype(bool)
        best_iou, best_dice = 0.0, 0.0
        for candidate in by_image.get((a["image_id"], a["category_id"]), []):
            candidate = candidate.astype(bool)
            inter, union = (candidate & target).sum(), (candidate | target).sum()
            iou = inter / max(union, 1)
            if iou > best_iou:
                best_iou, best_dice = iou, 2 * inter / max(candidate.sum() + target.sum(), 1)
        ious.append(best_iou)
        dices.append(best_dice)
    return {
        "box_ap50": _ap50_per_class(reference, predicted, "bbox"),
        "mask_ap50": _ap50_per_class(reference, predicted, "segm"),
        "miou": float(np.mean(ious)),
        "dice": float(np.mean(dices)),
        "found": int(np.sum(np.array(ious) >= 0.5)),
        "correct": correct,
        "reference": len(reference["annotations"]),
        "predicted": len(predicted["annotations"]),
    }
