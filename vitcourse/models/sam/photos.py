"""A mini-SAM on real photos: labelme's PASCAL VOC examples with instance polygons.

* :func:`read_voc_instances`: the three photos of ``labelme``'s COCO export with one
  full-resolution mask per instance (its polygons filled by ``pycocotools``);
* :func:`letterbox`: a photo padded to a square (below and right, as SAM's
  pre-processing pads at 1024 px) and resized to the side a mini-SAM takes; the
  padding repeats the edge pixels, since a flat grey band, never seen in the
  generated world, halves the mini-SAM's mIoU on world images;
* :func:`segment_photos`: a box and one point (the mask's centre) per instance, the
  masks back at the photo's resolution, IoU and Dice against the polygons, next to
  the baseline that fills the box.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .training import centre_point, normalize

__all__ = ["PHOTO_PROMPTS", "letterbox", "read_voc_instances", "segment_photos"]

PHOTO_PROMPTS = ("box", "one_point")
"""The prompts :func:`segment_photos` tries on every instance."""


def read_voc_instances(folder: str | Path | None = None) -> list[dict[str, Any]]:
    """labelme's PASCAL VOC photos with one mask per instance (COCO names).

    Args:
        folder: ``labelme-6.3.1/examples``; default
            ``vitcourse.data.sources.path("labelme_examples")`` (fetched at set-up).

    Returns:
        One dict per photo: ``image`` ``(3, H, W)`` in ``[0, 1]``, ``masks`` ``(K, H, W)``
        bool, ``boxes`` ``(K, 4)`` pixel corners (first and last pixel inside),
        ``names`` (K COCO class names) and ``file`` (the photo's name).
    """
    import json

    from pycocotools import mask as mask_utils

    from ...detection.data import VOC_TO_COCO, read_voc_photos

    if folder is None:
        from ...data import sources

        folder = sources.path("labelme_examples")
    root = Path(folder) / "instance_segmentation" / "data_dataset_coco"
    if not (root / "annotations.json").exists():
        raise FileNotFoundError(
            f"no labelme COCO export at {root}; fetch the sources first "
            "(python -m vitcourse.data.sources fetch labelme_examples, or make setup)"
        )
    coco = json.loads((root / "annotations.json").read_text(encoding="utf-8"))
    names = {c["id"]: VOC_TO_COCO.get(c["name"], c["name"]) for c in coco["categories"]}
    images, _ = read_voc_photos(folder)
    photos = []
    for info, image in zip(coco["images"], images):
        H, W = info["height"], info["width"]
        anns = [a for a in coco["annotations"] if a["image_id"] == info["id"]]
        masks = []
        for a in anns:
            rles = mask_utils.frPyObjects(a["segmentation"], H, W)
            masks.append(mask_utils.decode(mask_utils.merge(rles)).astype(bool))
        masks = torch.from_numpy(np.stack(masks)) if masks else torch.zeros(0, H, W, dtype=torch.bool)
        boxes = []
        for m in masks:
            ys, xs = torch.nonzero(m, as_tuple=True)
            boxes.append(torch.stack([xs.min(), ys.min(), xs.max(), ys.max()]).float())
        photos.append({
            "image": image, "masks": masks, "boxes": torch.stack(boxes).reshape(-1, 4),
            "names": [names[a["category_id"]] for a in anns], "file": Path(info["file_name"]).name,
        })  # fmt: skip
    return photos


def letterbox(image: torch.Tensor, size: int) -> tuple[torch.Tensor, float]:
    """Pad ``(3, H, W)`` to a square (below and right, repeating the edge pixels) and
    resize it to ``size``.

    Returns:
        ``((3, size, size), scale)``: photo pixel ``p`` lands at ``(p + 0.5) * scale -
        0.5``.
    """
    _, H, W = image.shape
    side = max(H, W)
    square = F.pad(image[None], (0, side - W, 0, side - H), mode="replicate")
    small = F.interpolate(
        square,
        size=(size, size),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )
    return small[0].clamp(0, 1), size / side


@torch.no_grad()
def segment_photos(
    sam: torch.nn.Module,
    photos: list[dict[str, Any]],
    prepare: Callable[[torch.Tensor], torch.Tensor] = normalize,
) -> list[dict[str, Any]]:
    """A box and one point per instance, masks at the photo's resolution, scored.

    Each photo is letterboxed to the mini-SAM's side and encoded once; the box is the
    instance's tight box, the point its pixel farthest from the border (as SAM's
    evaluation clicks); with one point the mask of highest predicted IoU of three is
    kept. The logits are resized back to the padded square and cropped to the photo.

    Args:
        sam: a :class:`~vitcourse.models.Sam` for ``S × S`` inputs (a mini-SAM, or SAM
            ViT-B from :func:`vitcourse.hub.sam_from_hf`), on any device.
        photos: from :func:`read_voc_instances`.
        prepare: ``(1, 3, S, S)`` images in ``[0, 1]`` → the SAM's input (default: the
            mini-SAM's normalisation).

    Returns:
        One dict per instance and prompt: ``photo``, ``instance``, ``name``, ``prompt``
        (one of :data:`PHOTO_PROMPTS`), ``iou``, ``dice``, ``predicted_iou``,
        ``box_fill_iou`` (the IoU of the filled box: a baseline that needs no model),
        ``area_fraction`` (the instance's share of the photo), ``mask`` ``(H, W)`` bool
        and the prompt in photo pixels (``box`` or ``point``).
    """
    sam.eval()
    size = sam.config.img_size
    device = next(sam.parameters()).device
    rows = []
    for p, photo in enumerate(photos):
        image, masks = photo["image"], photo["masks"]
        _, H, W = image.shape
        side = max(H, W)
        small, scale = letterbox(image, size)
        embedding = sam.encode_image(prepare(small[None]).to(device))
        for k, (target, box) in enumerate(zip(masks, photo["boxes"])):
            x, y = centre_point(target)
            prompts = {
                "box": {"boxes": ((box + 0.5) * scale - 0.5).clamp(0, size - 1)[None, None]},
                "one_point": {
                    "points": torch.tensor([[[[(x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5]]]]),
                    "labels": torch.ones(1, 1, 1, dtype=torch.long),
                },
            }
            filled = torch.zeros_like(target)
            x0, y0, x1, y1 = (int(v) for v in box.tolist())
            filled[y0 : y1 + 1, x0 : x1 + 1] = True
            for kind in PHOTO_PROMPTS:
                prompt = {key: value.to(device) for key, value in prompts[kind].items()}
                logits, iou_pred = sam.predict(embedding, **prompt, multimask_output=kind == "one_point")
                best = int(iou_pred[0, 0].argmax())
                logit = sam.upscale(logits)[0, 0, best].float().cpu()  # (S, S)
                big = F.interpolate(logit[None, None], size=(side, side), mode="bilinear", align_corners=False)
                mask = big[0, 0, :H, :W] > 0
                rows.append({
                    "photo": p, "instance": k, "name": photo["names"][k], "prompt": kind,
                    "iou": _iou(mask, target), "dice": _dice(mask, target),
                    "predicted_iou": float(iou_pred[0, 0, best]), "box_fill_iou": _iou(filled, target),
                    "area_fraction": float(target.float().mean()), "mask": mask,
                    **({"box": box} if kind == "box" else {"point": (x, y)}),
                })  # fmt: skip
    return rows


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum().item()
    return (a & b).sum().item() / union if union else 1.0


def _dice(a: torch.Tensor, b: torch.Tensor) -> float:
    total = a.sum().item() + b.sum().item()
    return 2 * (a & b).sum().item() / total if total else 1.0
