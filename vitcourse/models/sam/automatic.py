"""Automatic masks: SAM prompted with a grid of points, then filtered (the data engine's last stage).

Every point of an ``n × n`` grid is a one-point prompt; each gives three masks. A mask
is kept when

* its **predicted IoU** is high (the decoder believes it),
* it is **stable**: thresholding its logits at ``-offset`` and at ``+offset`` gives
  almost the same mask (``area(logits > offset) / area(logits > -offset)``), so it does
  not depend on where exactly the threshold lies,
* it is not tiny,

and then **non-maximum suppression** keeps, among masks that overlap by more than
``nms_iou``, the one with the highest predicted IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .sam import Sam

__all__ = ["AutoMaskConfig", "generate_masks", "mask_nms", "match_masks", "stability_score"]


@dataclass(frozen=True)
class AutoMaskConfig:
    """Settings of :func:`generate_masks`.

    Args:
        points_per_side: the grid is ``points_per_side²`` points.
        pred_iou_thresh: least predicted IoU.
        stability_thresh: least stability score.
        stability_offset: the logit offset of the stability score.
        nms_iou: masks overlapping a better one by more than this are dropped.
        min_area: least pixels of a mask.
    """

    points_per_side: int = 8
    pred_iou_thresh: float = 0.7
    stability_thresh: float = 0.85
    stability_offset: float = 1.0
    nms_iou: float = 0.7
    min_area: int = 8


def stability_score(logits: torch.Tensor, offset: float = 1.0) -> torch.Tensor:
    """``area(logits > offset) / area(logits > -offset)`` per mask.

    Args:
        logits: ``(M, H, W)`` mask logits.
        offset: how far from 0 both thresholds lie.

    Returns:
        ``(M,)``, 1 for a mask whose edges are sharp.
    """
    high = (logits > offset).flatten(1).sum(-1).float()
    low = (logits > -offset).flatten(1).sum(-1).float()
    return high / low.clamp(min=1)


def _pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every mask of ``a`` ``(M, H, W)`` with every mask of ``b`` ``(K, H, W)``: ``(M, K)``."""
    a, b = a.flatten(1).float(), b.flatten(1).float()
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return inter / union.clamp(min=1)


def mask_nms(masks: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the masks kept by greedy non-maximum suppression, best first.

    Args:
        masks: ``(M, H, W)`` bool.
        scores: ``(M,)``.
        iou_threshold: a mask overlapping a kept one by more than this is dropped.

    Returns:
        ``(K,)`` indices into ``masks``.
    """
    order = scores.argsort(descending=True)
    overlap = _pairwise_iou(masks[order], masks[order])
    keep: list[int] = []
    for i in range(len(order)):
        if all(overlap[i, j] <= iou_threshold for j in keep):
            keep.append(i)
    return order[keep]


@torch.no_grad()
def generate_masks(model: Sam, image: torch.Tensor, config: AutoMaskConfig | None = None) -> dict:
    """All the masks SAM finds in one image from a grid of point prompts.

    Args:
        model: a :class:`Sam`.
        image: ``(1, C, S, S)``, prepared as the model expects (normalised).
        config: the filters (:class:`AutoMaskConfig`).

    Returns:
        ``{"masks": (K, S, S) bool, "predicted_iou": (K,), "stability": (K,),
        "points": (K, 2)}``, best first.
    """
    config = config or AutoMaskConfig()
    n, size = config.points_per_side, image.shape[-1]
    centres = (torch.arange(n, dtype=torch.float32) + 0.5) * size / n
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    grid = torch.stack([x.flatten(), y.flatten()], dim=-1)  # (n², 2)
    embedding = model.encode_image(image)
    labels = torch.ones(1, n * n, 1, dtype=torch.long)
    logits, iou = model.predict(embedding, grid[None, :, None], labels)  # (1, n², 3, s, s)
    logits = model.upscale(logits)[0].flatten(0, 1)  # (3 n², S, S)
    iou = iou[0].flatten()
    points = grid.repeat_interleave(logits.shape[0] // (n * n), dim=0)
    stability = stability_score(logits, config.stability_offset)
    masks = logits > 0
    keep = (
        (iou >= config.pred_iou_thresh)
        & (stability >= config.stability_thresh)
        & (masks.flatten(1).sum(-1) >= config.min_area)
    )
    masks, iou, stability, points = masks[keep], iou[keep], stability[keep], points[keep]
    kept = mask_nms(masks, iou, config.nms_iou)
    return {"masks": masks[kept], "predicted_iou": iou[kept], "stability": stability[kept], "points": points[kept]}


def match_masks(predicted: torch.Tensor, reference: torch.Tensor, threshold: float = 0.5) -> dict[str, float]:
    """How well automatic masks cover the reference instances.

    Args:
        predicted: ``(K, H, W)`` bool.
        reference: ``(R, H, W)`` bool.
        threshold: IoU at which a reference instance counts as found.

    Returns:
        ``{"found": …, "reference": R, "predicted": K, "iou_sum": …}``: instances whose
        best mask reaches ``threshold`` and the sum of those best IoUs (for a mean over
        many images).
    """
    if len(predicted) == 0:
        return {"found": 0, "reference": len(reference), "predicted": 0, "iou_sum": 0.0}
    best = _pairwise_iou(reference, predicted).max(dim=1).values  # (R,)
    found = best >= threshold
    return {
        "found": int(found.sum()),
        "reference": len(reference),
        "predicted": len(predicted),
        "iou_sum": float(best[found].sum()),
    }
