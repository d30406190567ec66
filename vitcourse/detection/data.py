"""Detection data: the generated shapes as DETR wants them, and real tree crowns.

* :data:`SHAPES_WORLD`: the generated world of the detection chapter, 64 px images
  with 1 to 4 upright shapes whose sizes (7 to 16 px of radius) are those the
  shipped ``resnet_shapes`` backbone saw at 32 px, so a detector can start from it;
* :func:`detr_targets`: a :class:`~vitcourse.data.ShapesDetection` target (pixel
  corner boxes) → DETR's target (``cxcywh`` in ``[0, 1]``);
* :func:`read_tree_crowns` / :func:`tree_tiles`: the aerial photos of the PyPI
  package ``deepforest`` with their tree-crown boxes (PASCAL VOC XML), cut into
  square tiles a small detector can take;
* :func:`read_voc_photos`: three PASCAL VOC photos with boxes (from ``labelme``'s
  examples), for the Hub models of the ``full`` profile.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.world import WorldConfig
from .boxes import normalize_boxes

__all__ = [
    "SHAPES_WORLD",
    "TREE_IMAGES",
    "TreePhoto",
    "VOC_TO_COCO",
    "detr_targets",
    "read_tree_crowns",
    "read_voc_photos",
    "tree_box_counts",
    "tree_tiles",
]

SHAPES_WORLD = WorldConfig(img_size=64, radius=(0.12, 0.25), rotation=0.0, min_shapes=1, max_shapes=4)
"""64 px, 1–4 upright shapes of radius 12–25 % of the side (7.7–16 px)."""


def detr_targets(target: dict, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """DETR's target for one image: ``labels`` and ``boxes`` ``cxcywh`` in ``[0, 1]``.

    Args:
        target: a dict with ``labels`` ``(K,)`` and ``boxes`` ``(K, 4)`` xyxy pixels.
        size: the image's ``(H, W)``.

    Returns:
        ``{"labels": (K,), "boxes": (K, 4)}``.
    """
    return {"labels": target["labels"], "boxes": normalize_boxes(target["boxes"], size)}


TREE_IMAGES = (
    "2019_YELL_2_528000_4978000_image_crop2",
    "2019_YELL_2_541000_4977000_image_crop",
    "OSBS_029",
    "SOAP_061",
)
"""The four annotated photos of ``deepforest/data`` (their ``.png`` and ``.xml``)."""


@dataclass
class TreePhoto:
    """One aerial photo and its tree-crown boxes.

    Attributes:
        name: file stem.
        image: ``(3, H, W)`` float32 in ``[0, 1]``.
        boxes: ``(K, 4)`` float32 xyxy pixels.
    """

    name: str
    image: torch.Tensor
    boxes: torch.Tensor


def read_tree_crowns(folder: str | Path | None = None, names: tuple[str, ...] = TREE_IMAGES) -> list[TreePhoto]:
    """Read the photos and their VOC boxes (every box is a tree: *Tree*, *Dead* or *Alive*).

    Args:
        folder: ``deepforest/data``; default ``vitcourse.data.sources.path("deepforest_trees")``.
        names: which photos.

    Returns:
        One :class:`TreePhoto` per name.
    """
    from PIL import Image

    if folder is None:
        from ..data import sources

        folder = sources.path("deepforest_trees")
    folder = Path(folder)
    photos = []
    for name in names:
        image = np.asarray(Image.open(folder / f"{name}.png").convert("RGB"), dtype=np.float32) / 255
        root = ET.parse(folder / f"{name}.xml").getroot()
        boxes = [
            [float(obj.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]
            for obj in root.iter("object")
        ]
        photos.append(
            TreePhoto(name, torch.from_numpy(image.transpose(2, 0, 1).copy()), torch.tensor(boxes).reshape(-1, 4))
        )
    return photos


def tree_box_counts(folder: str | Path | None = None, names: tuple[str, ...] = TREE_IMAGES) -> dict[str, int]:
    """How many crowns each photo's VOC file annotates (reads the XML only, not the photos)."""
    if folder is None:
        from ..data import sources

        folder = sources.path("deepforest_trees")
    return {name: len(ET.parse(Path(folder) / f"{name}.xml").getroot().findall("object")) for name in names}


def tree_tiles(
    photo: TreePhoto, tile: int = 200, size: int = 128, min_visible: float = 0.5
) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """Cut a photo into non-overlapping ``tile``-px squares resized to ``size`` px.

    A crown cut by a tile's edge is kept (clipped) if at least ``min_visible`` of
    its area falls inside the tile.

    Args:
        photo: from :func:`read_tree_crowns`.
        tile: side of a tile, in the photo's pixels.
        size: side of the returned images.
        min_visible: least fraction of a box inside the tile.

    Returns:
        ``(image (3, size, size), {"boxes": (K, 4) xyxy pixels of the tile image,
        "labels": (K,) zeros})`` for every tile with at least one crown.
    """
    _, H, W = photo.image.shape
    scale = size / tile
    out = []
    for y0 in range(0, H - tile + 1, tile):
        for x0 in range(0, W - tile + 1, tile):
            crop = photo.image[:, y0 : y0 + tile, x0 : x0 + tile]
            boxes = photo.boxes - torch.tensor([x0, y0, x0, y0], dtype=torch.float32)
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            clipped = boxes.clamp(0, tile)
            inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
            keep = inside >= min_visible * area
            if not keep.any():
                continue
            image = F.interpolate(crop[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
            target = {"boxes": clipped[keep] * scale, "labels": torch.zeros(int(keep.sum()), dtype=torch.int64)}
            out.append((image.clamp(0, 1), target))
    return out


VOC_TO_COCO = {
    "aeroplane": "airplane", "bicycle": "bicycle", "bird": "bird", "boat": "boat", "bottle": "bottle",
    "bus": "bus", "car": "car", "cat": "cat", "chair": "chair", "cow": "cow", "diningtable": "dining table",
    "dog": "dog", "horse": "horse", "motorbike": "motorcycle", "person": "person", "potted plant": "potted plant",
    "sheep": "sheep", "sofa": "couch", "train": "train", "tv/monitor": "tv",
}  # fmt: skip
"""PASCAL VOC's 20 class names → COCO's names for the same things."""


def read_voc_photos(folder: str | Path | None = None) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
    """labelme's three PASCAL VOC photos with their boxes (its COCO export), class names in COCO's words.

    Args:
        folder: ``labelme-6.3.1/examples``; default ``vitcourse.data.sources.path("labelme_examples")``.

    Returns:
        ``(images, targets)``: ``(3, H, W)`` float tensors in ``[0, 1]`` and dicts with
        ``boxes`` ``(K, 4)`` xyxy pixels and ``names`` (K COCO class names).
    """
    import json

    from PIL import Image

    if folder is None:
        from ..data import sources

        folder = sources.path("labelme_examples")
    root = Path(folder) / "instance_segmentation" / "data_dataset_coco"
    coco = json.loads((root / "annotations.json").read_text(encoding="utf-8"))
    names = {c["id"]: VOC_TO_COCO.get(c["name"], c["name"]) for c in coco["categories"]}
    images, targets = [], []
    for info in coco["images"]:
        pixels = np.asarray(Image.open(root / info["file_name"]).convert("RGB"), dtype=np.float32) / 255
        anns = [a for a in coco["annotations"] if a["image_id"] == info["id"]]
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in anns], dtype=torch.float32).reshape(-1, 4)  # fmt: skip
        images.append(torch.from_numpy(pixels.transpose(2, 0, 1).copy()))
        targets.append({"boxes": boxes, "names": [names[a["category_id"]] for a in anns]})
    return images, targets
