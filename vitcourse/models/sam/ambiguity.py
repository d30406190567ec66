"""Ambiguity: one point on a nested object, three masks ranked by predicted IoU.

* :func:`nested_scene`: a generated-world image with a small shape inside a large one,
  the part's and the whole's masks and the point a user would click on the part;
* :func:`point_masks`: a SAM's three masks for one point, best predicted IoU first,
  each with its IoU against named reference masks (the part, the whole).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["HIT_IOU", "nested_metrics", "nested_scene", "point_masks"]

#: IoU from which a mask counts as finding the part or the whole (:func:`nested_metrics`).
HIT_IOU = 0.5


def nested_scene(
    size: int = 64,
    outer: tuple[str, str, float] = ("circle", "blue", 0.34),
    inner: tuple[str, str, float] = ("square", "yellow", 0.14),
    background: tuple[str, str] = ("white", "light blue"),
) -> dict:
    """A large shape with a small one inside it, centred, on a world background.

    Args:
        size: the side in pixels.
        outer, inner: ``(shape, colour, radius as a fraction of the side)``.
        background: two colour names of a gradient background.

    Returns:
        ``{"image": (3, S, S) in [0, 1], "part": (S, S) bool, "whole": (S, S) bool,
        "point": (x, y)}``: the inner shape, the outer one with the inner one, and
        the centre of the inner shape.
    """
    from ...data.backgrounds import COLORS, render_background
    from ...data.shapes import shape_coverage

    colors = np.array([COLORS[c].rgb for c in background], dtype=np.float32)
    image = render_background("gradient", np.random.default_rng(0), (size, size), colors)
    centre = (size / 2, size / 2)
    masks = []
    for shape, color, radius in (outer, inner):
        coverage, mask = shape_coverage(shape, size, centre, radius * size)
        alpha = coverage[..., None]
        image = image * (1 - alpha) + np.asarray(COLORS[color].rgb, dtype=np.float32) * alpha
        masks.append(torch.from_numpy(mask))
    if not (masks[1] & ~masks[0]).sum() == 0:
        raise ValueError(f"the inner shape {inner} must fit inside the outer one {outer}")
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)),
        "part": masks[1],
        "whole": masks[0] | masks[1],
        "point": centre,
    }


@torch.no_grad()
def point_masks(
    sam: torch.nn.Module,
    image: torch.Tensor,
    point: tuple[float, float],
    prepare: Callable[[torch.Tensor], torch.Tensor],
    references: dict[str, torch.Tensor] | None = None,
) -> list[dict]:
    """The three masks of one foreground point, best predicted IoU first.

    Args:
        sam: a :class:`~vitcourse.models.Sam` for ``S × S`` inputs.
        image: ``(3, S, S)`` in ``[0, 1]``.
        point: ``(x, y)`` in pixels.
        prepare: turns ``(1, 3, S, S)`` images into the SAM's input (its normalisation).
        references: named ``(S, S)`` bool masks to score every mask against.

    Returns:
        Three dicts: ``output`` (the decoder's mask index), ``predicted_iou``,
        ``mask`` ``(S, S)`` bool, ``area`` (pixels) and ``iou_<name>`` per reference.
    """
    sam.eval()
    embedding = sam.encode_image(prepare(image[None]))
    points = torch.tensor([[[[float(point[0]), float(point[1])]]]])
    labels = torch.ones(1, 1, 1, dtype=torch.long)  # one foreground point
    logits, iou = sam.predict(embedding, points, labels, multimask_output=True)
    masks = sam.upscale(logits)[0, 0] > 0  # (3, S, S)
    rows = []
    for k in iou[0, 0].argsort(descending=True).tolist():
        row = {
            "output": k,
            "predicted_iou": float(iou[0, 0, k]),
            "mask": masks[k],
            "area": int(masks[k].sum()),
        }
        for name, ref in (references or {}).items():
            union = (masks[k] | ref).sum().item()
            row[f"iou_{name}"] = (masks[k] & ref).sum().item() / union if union else 1.0
        rows.append(row)
    return rows


@torch.no_grad()
def nested_metrics(sam: torch.nn.Module, data, prepare: Callable[[torch.Tensor], torch.Tensor]) -> dict:
    """Part and whole from one point on nested pairs (:func:`~.training.nest_shapes`).

    Every image of ``data`` must end with a part and its whole (``make_instances(...,
    nested=1.0)``); the point is the part's centre.

    Returns:
        ``{"part_iou", "whole_iou"}``: the mean over images of the best IoU among the
        three masks with the part and with the whole; ``"both"``: the share of images
        where one mask has IoU ≥ :data:`HIT_IOU` with the part and another with the whole;
        ``"images"``.
    """
    from .training import centre_point

    part_ious, whole_ious, both = [], [], []
    for image, masks in zip(data.images, data.masks):
        part, whole = masks[-2], masks[-1]
        refs = {"part": part, "whole": whole}
        rows = point_masks(sam, image, centre_point(part), prepare, refs)
        part_ious.append(max(r["iou_part"] for r in rows))
        whole_ious.append(max(r["iou_whole"] for r in rows))
        hit_part = {r["output"] for r in rows if r["iou_part"] >= HIT_IOU}
        hit_whole = {r["output"] for r in rows if r["iou_whole"] >= HIT_IOU}
        both.append(bool(hit_part) and bool(hit_whole))  # no mask can be both: part << whole
    return {
        "part_iou": float(np.mean(part_ious)),
        "whole_iou": float(np.mean(whole_ious)),
        "both": float(np.mean(both)),
        "images": len(part_ious),
    }
