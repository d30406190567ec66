"""Non-maximum suppression: what dense detectors need and DETR doesn't.

A dense detector (Faster R-CNN's anchors, YOLO's grid cells) makes one prediction
per location, so every object is found by many neighbouring locations at once: a
cluster of near-identical boxes. Non-maximum suppression (NMS) keeps the
best-scoring box of each cluster and drops every box overlapping it by more than
an IoU threshold, greedily, from the highest score down. It is a sequential
post-processing step whose cost grows with the number of candidate boxes, and its
threshold is one more knob (too low merges neighbours, too high keeps duplicates).

DETR predicts a set: the Hungarian matching gave each object one query during
training and pushed every other query towards "no object", so its N outputs
carry no duplicates to suppress.

* :func:`dense_candidates`: what a dense detector emits before NMS, simulated from
  the annotations (many jittered copies of each box, lower scores the further they
  drift, plus background clutter), to see duplicates and NMS at work;
* :func:`nms_timings`: ``torchvision.ops.nms`` time as the candidates grow.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.ops import batched_nms, box_iou, nms

from ..measure import time_call

__all__ = ["dense_candidates", "nms_timings", "suppress"]


def dense_candidates(
    boxes: torch.Tensor,
    labels: torch.Tensor,
    image_size: int,
    per_object: int = 20,
    jitter: float = 0.12,
    clutter: int = 10,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A dense detector's raw output for one image, simulated from its annotated boxes.

    Args:
        boxes: ``(M, 4)`` annotated xyxy boxes in pixels; ``labels`` ``(M,)``.
        image_size: the image side, to keep boxes inside.
        per_object: candidate boxes per object (neighbouring locations that all fire).
        jitter: standard deviation of the corners' noise, as a fraction of the box size.
        clutter: low-scoring boxes at random places (background responses).
        seed: for the noise.

    Returns:
        ``{"boxes": (K, 4), "scores": (K,), "labels": (K,)}``: each candidate's score is
        its IoU with the object it came from times a random confidence, so the best
        box of a cluster is usually, not always, the best placed.
    """
    g = torch.Generator().manual_seed(seed)
    out_boxes, out_scores, out_labels = [], [], []
    for box, label in zip(boxes.float(), labels):
        size = (box[2:] - box[:2]).repeat(2)  # (4,): w, h, w, h
        noisy = box + torch.randn(per_object, 4, generator=g) * jitter * size
        noisy = torch.stack([noisy[:, :2].min(noisy[:, 2:]), noisy[:, :2].max(noisy[:, 2:])], 1).reshape(-1, 4)
        noisy = noisy.clamp(0, image_size)
        iou = box_iou(noisy, box[None])[:, 0]
        confidence = 0.6 + 0.4 * torch.rand(per_object, generator=g)
        out_boxes.append(noisy)
        out_scores.append(iou * confidence)
        out_labels.append(torch.full((per_object,), int(label)))
    corner = torch.rand(clutter, 2, generator=g) * image_size * 0.8
    side = (0.1 + 0.2 * torch.rand(clutter, 2, generator=g)) * image_size
    out_boxes.append(torch.cat([corner, (corner + side).clamp(max=image_size)], 1))
    out_scores.append(0.3 * torch.rand(clutter, generator=g))
    num_classes = int(labels.max()) + 1 if len(labels) else 1
    out_labels.append(torch.randint(num_classes, (clutter,), generator=g))
    return {"boxes": torch.cat(out_boxes), "scores": torch.cat(out_scores), "labels": torch.cat(out_labels)}


def suppress(detections: dict[str, torch.Tensor], iou_threshold: float = 0.5) -> dict[str, torch.Tensor]:
    """Class-wise NMS (``torchvision.ops.batched_nms``): the detections that survive, best first."""
    keep = batched_nms(detections["boxes"], detections["scores"], detections["labels"], iou_threshold)
    return {k: v[keep] for k, v in detections.items()}


def _clustered_boxes(num_boxes: int, num_objects: int, image_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_boxes`` candidates around ``num_objects`` objects, as a dense detector's output."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(num_objects, 2, generator=g) * image_size
    sizes = (0.05 + 0.2 * torch.rand(num_objects, 2, generator=g)) * image_size
    owner = torch.randint(num_objects, (num_boxes,), generator=g)
    c = centres[owner] + torch.randn(num_boxes, 2, generator=g) * sizes[owner] * 0.15
    s = sizes[owner] * (1 + 0.1 * torch.randn(num_boxes, 2, generator=g))
    return torch.cat([c - s / 2, c + s / 2], 1), torch.rand(num_boxes, generator=g)


def nms_timings(
    counts: Sequence[int] = (100, 300, 1_000, 3_000, 10_000),
    num_objects: int = 20,
    image_size: int = 640,
    iou_threshold: float = 0.5,
    repeats: int = 5,
    seed: int = 0,
) -> list[dict[str, float]]:
    """``torchvision.ops.nms`` on ``n`` clustered candidates, for each ``n`` of ``counts``.

    Returns:
        One dict per count: ``num_boxes``, ``kept``, ``seconds`` (wall) and
        ``cpu_seconds`` (median of ``repeats``).
    """
    rows = []
    for n in counts:
        boxes, scores = _clustered_boxes(n, num_objects, image_size, seed)
        kept = len(nms(boxes, scores, iou_threshold))
        wall, cpu = time_call(lambda b=boxes, s=scores: nms(b, s, iou_threshold), repeats=repeats)
        rows.append({"num_boxes": n, "kept": kept, "seconds": wall, "cpu_seconds": cpu})
    return rows
