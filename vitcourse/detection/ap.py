"""Average precision as COCO computes it: a readable version, and ``pycocotools``.

A detector returns boxes with scores. For one class and one IoU threshold t:

1. in each image, go through the detections from the highest score down; each one
   takes the best still-free annotated box of its class whose IoU with it is ≥ t
   (a *true positive*), or none (a *false positive*);
2. pool the detections of every image, sort them by score, and walk down the list:
   after k detections, precision = TP/k and recall = TP/(annotated boxes);
3. make precision non-increasing (each point takes the best precision at any
   higher recall) and average it at the 101 recalls 0, 0.01, …, 1 (zero where the
   recall is never reached): that is AP for this class and t.

COCO's **AP** averages over the classes and over t = 0.50, 0.55, …, 0.95; **AP50**
and **AP75** fix t; **APs**, **APm**, **APl** count only objects of small (area
< 32²), medium and large (> 96²) size, in pixels of a COCO image of about 640 px;
for other image sizes :func:`coco_area_ranges` scales those limits with the image
(a 64 px image's "small" is below 3.2² px²). Detections outside the size range
that match nothing, and annotations outside it, are ignored rather than counted.

:func:`average_precision` is step 3, :func:`match_image` step 1,
:func:`evaluate_detections` the whole table; :func:`coco_evaluate` asks
``pycocotools`` (the reference) for the same table; a test proves they agree.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "COCO_METRICS",
    "average_precision",
    "coco_area_ranges",
    "coco_evaluate",
    "evaluate_detections",
    "iou_matrix",
    "match_image",
]

COCO_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
"""The six numbers of the DETR paper's tables, in that order."""

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100


def coco_area_ranges(image_size: float | None = None) -> dict[str, tuple[float, float]]:
    """COCO's object-size ranges in px², optionally scaled to images of another size.

    Args:
        image_size: the side of the images evaluated; None keeps COCO's absolute
            limits (32², 96²), a number scales them by ``(image_size / 640)²``.

    Returns:
        ``{"all": …, "small": …, "medium": …, "large": …}``, each ``(low, high)``.
    """
    s = 1.0 if image_size is None else (image_size / 640.0) ** 2
    return {
        "all": (0.0, 1e10),
        "small": (0.0, 32.0**2 * s),
        "medium": (32.0**2 * s, 96.0**2 * s),
        "large": (96.0**2 * s, 1e10),
    }


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` ``(n, 4)`` with every box of ``b`` ``(m, 4)`` (xyxy) → ``(n, m)``."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def match_image(
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    gt_boxes: np.ndarray,
    iou_threshold: float,
    area_range: tuple[float, float] = (0.0, 1e10),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 1 for one image and one class: greedy matching by score.

    Args:
        det_boxes: ``(D, 4)`` xyxy detections; ``det_scores`` ``(D,)``.
        gt_boxes: ``(G, 4)`` xyxy annotations.
        iou_threshold: least IoU of a true positive.
        area_range: annotations outside it are ignored: a detection matching one is
            neither right nor wrong, and so is an unmatched detection outside it.

    Returns:
        ``(scores, true_positive, ignored)``, ``(D',)`` each, for the (at most 100)
        detections kept, highest score first.
    """
    order = np.argsort(-det_scores, kind="mergesort")[:MAX_DETECTIONS]
    det_boxes, det_scores = det_boxes[order], det_scores[order]
    gt_area = _area(gt_boxes)
    gt_ignored = (gt_area < area_range[0]) | (gt_area > area_range[1])
    gt_order = np.argsort(gt_ignored, kind="mergesort")  # the ones that count first
    gt_boxes, gt_ignored = gt_boxes[gt_order], gt_ignored[gt_order]
    ious = iou_matrix(det_boxes, gt_boxes)  # (D, G)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    matched = np.full(len(det_boxes), -1)
    for d in range(len(det_boxes)):
        best, best_iou = -1, min(iou_threshold, 1 - 1e-10)
        for g in range(len(gt_boxes)):
            if taken[g]:
                continue
            if best >= 0 and not gt_ignored[best] and gt_ignored[g]:
                break  # a box that counts beats any ignored one
            if ious[d, g] < best_iou:
                continue
            best, best_iou = g, ious[d, g]
        if best >= 0:
            taken[best], matched[d] = True, best
    det_area = _area(det_boxes)
    outside = (det_area < area_range[0]) | (det_area > area_range[1])
    ignored = outside.copy()  # unmatched: ignored only when outside the size range
    hit = matched >= 0
    ignored[hit] = gt_ignored[matched[hit]]  # matched: as the annotation it matched
    return det_scores, matched >= 0, ignored


def average_precision(
    scores: np.ndarray, true_positive: np.ndarray, num_annotations: int
) -> float:
    """Steps 2 and 3: COCO's 101-point interpolated AP of pooled detections.

    Args:
        scores: ``(D,)`` detection scores, pooled over images.
        true_positive: ``(D,)`` bool.
        num_annotations: annotated boxes that count (the recall's denominator).

    Returns:
        AP in ``[0, 1]``.
    """
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(true_positive[order]).astype(float)
    fp = np.cumsum(~true_positive[order]).astype(float)
    recall = tp / num_annotations
    precision = tp / (tp + fp + np.spacing(1))
    # best at any higher recall
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    where = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(
        where < len(precision), precision[np.minimum(where, len(precision) - 1)], 0.0
    )
    return float(sampled.mean())


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def evaluate_detections(
    predictions: Sequence[dict],
    targets: Sequence[dict],
    num_classes: int,
    image_size: float | None = None,
) -> dict[str, float]:
    """COCO's AP table, computed here step by step.

    Args:
        predictions: per image, a dict with ``boxes`` ``(K, 4)`` xyxy pixels,
            ``scores`` ``(K,)`` and ``labels`` ``(K,)``.
        targets: per image, a dict with ``boxes`` ``(M, 4)`` xyxy pixels and ``labels``.
        num_classes: classes ``0 … num_classes − 1``.
        image_size: scales the size ranges (see :func:`coco_area_ranges`).

    Returns:
        ``{"AP": …, "AP50": …, "AP75": …, "APs": …, "APm": …, "APl": …}``; −1 where no
        annotation of that size exists (as ``pycocotools`` reports it).
    """
    ranges = coco_area_ranges(image_size)
    per_image = []
    for pred, target in zip(predictions, targets):
        per_image.append(
            {k: _numpy(v) for k, v in pred.items() if k in ("boxes", "scores", "labels")}
            | {"gt_boxes": _numpy(target["boxes"]), "gt_labels": _numpy(target["labels"])}
        )
    table = {}
    for name, area_range in (("all", ranges["all"]), ("small", ranges["small"]),
                             ("medium", ranges["medium"]), ("large", ranges["large"])):  # fmt: skip
        ap = np.full((len(IOU_THRESHOLDS), num_classes), -1.0)  # (T, K)
        for c in range(num_classes):
            for t, threshold in enumerate(IOU_THRESHOLDS):
                scores, tps, counted = [], [], 0
                for item in per_image:
                    det = item["labels"] == c
                    gt = item["gt_boxes"][item["gt_labels"] == c].reshape(-1, 4)
                    if not det.any() and not len(gt):
                        continue
                    s, tp, ignored = match_image(
                        item["boxes"][det].reshape(-1, 4), item["scores"][det], gt, threshold, area_range
                    )
                    scores.append(s[~ignored])
                    tps.append(tp[~ignored])
                    area = _area(gt)
                    counted += int(((area >= area_range[0]) & (area <= area_range[1])).sum())
                if counted:
                    ap[t, c] = average_precision(np.concatenate(scores), np.concatenate(tps), counted)
        table[name] = ap
    def mean(a: np.ndarray) -> float:
        valid = a[a > -1]
        return float(valid.mean()) if valid.size else -1.0

    return {
        "AP": mean(table["all"]),
        "AP50": mean(table["all"][0]),
        "AP75": mean(table["all"][5]),
        "APs": mean(table["small"]),
        "APm": mean(table["medium"]),
        "APl": mean(table["large"]),
    }


def _to_coco(predictions: Sequence[dict], targets: Sequence[dict], num_classes: int):
    """The ground truth as a COCO dataset dict and the predictions as COCO results."""
    images, annotations, results = [], [], []
    for image_id, (pred, target) in enumerate(zip(predictions, targets)):
        images.append({"id": image_id})
        for box, label in zip(_numpy(target["boxes"]), _numpy(target["labels"])):
            x0, y0, x1, y1 = (float(v) for v in box)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
            })  # fmt: skip
        for box, score, label in zip(_numpy(pred["boxes"]), _numpy(pred["scores"]), _numpy(pred["labels"])):
            x0, y0, x1, y1 = (float(v) for v in box)
            results.append({
                "image_id": image_id, "category_id": int(label), "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": float(score),
            })  # fmt: skip
    dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": str(c)} for c in range(num_classes)],
    }
    return dataset, results


def coco_evaluate(
    predictions: Sequence[dict],
    targets: Sequence[dict],
    num_classes: int,
    image_size: float | None = None,
) -> dict[str, float]:
    """The same table from ``pycocotools``' ``COCOeval`` (the reference evaluator).

    Arguments and return value as in :func:`evaluate_detections`. ``COCOeval``'s
    printing is silenced.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dataset, results = _to_coco(predictions, targets, num_classes)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        dt = gt.loadRes(results) if results else COCO()
        if not results:
            dt.dataset = {"images": dataset["images"], "annotations": [], "categories": dataset["categories"]}
            dt.createIndex()
        evaluator = COCOeval(gt, dt, iouType="bbox")
        ranges = coco_area_ranges(image_size)
        evaluator.params.areaRng = [list(ranges[k]) for k in ("all", "small", "medium", "large")]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(zip(COCO_METRICS, (float(v) for v in evaluator.stats[:6])))
