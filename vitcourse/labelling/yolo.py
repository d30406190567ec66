"""Labels in the YOLO format (boxes and polygons), the other format labelling tools export.

A YOLO data set is a folder of images, a folder of text files (one per image, one line
per object: ``class x1 y1 x2 y2 …``, polygon vertices normalised to ``[0, 1]``) and a
``data.yaml`` naming the classes. A polygon has no holes: a ring's inner hole is lost
(its outer outline is kept), which the round-trip test measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["read_yolo", "write_yolo"]


def _polygon(mask: torch.Tensor) -> np.ndarray | None:
    """The outline of a mask's largest part, ``(V, 2)`` pixel ``(x, y)``, or None if empty."""
    import supervision as sv

    polygons = sv.mask_to_polygons(mask.numpy().astype(bool))
    if not polygons:
        return None
    return max(polygons, key=len).astype(np.float64)


def write_yolo(
    folder: str | Path, images: torch.Tensor, labels: Sequence[Sequence[dict]], categories: Sequence[str]
) -> Path:
    """Write images and their labels as a YOLO segmentation data set.

    Args:
        folder: where (created); ``images/``, ``labels/`` and ``data.yaml`` go inside.
        images: ``(N, 3, H, W)`` in ``[0, 1]``.
        labels: per image, rows of :func:`~vitcourse.labelling.label_images`.
        categories: class names, in class order.

    Returns:
        The path of ``data.yaml``.
    """
    from PIL import Image

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for index, (image, rows) in enumerate(zip(images, labels)):
        H, W = image.shape[-2:]
        pixels = (image.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
        Image.fromarray(pixels).save(folder / "images" / f"{index:05d}.png")
        lines = []
        for row in rows:
            polygon = _polygon(row["mask"])
            if polygon is None:
                continue
            polygon = polygon / np.array([W, H])  # normalised (x, y)
            lines.append(f"{row['label']} " + " ".join(f"{v:.6f}" for v in polygon.flatten()))
        (folder / "labels" / f"{index:05d}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    names = "\n".join(f"  - {name}" for name in categories)
    data_yaml = folder / "data.yaml"
    data_yaml.write_text(f"nc: {len(categories)}\nnames:\n{names}\n", encoding="utf-8")
    return data_yaml


def read_yolo(folder: str | Path) -> list[dict]:
    """Read a YOLO data set back with ``supervision`` (a reader the tools share).

    Returns:
        Per image, in file order: ``{"labels": (K,) int, "masks": (K, H, W) bool}``.
    """
    import supervision as sv
    from PIL import Image

    folder = Path(folder)
    dataset = sv.DetectionDataset.from_yolo(
        images_directory_path=str(folder / "images"),
        annotations_directory_path=str(folder / "labels"),
        data_yaml_path=str(folder / "data.yaml"),
        force_masks=True,
    )
    out = []
    for path in sorted(dataset.image_paths):
        detections = dataset.annotations[path]
        labels = torch.from_numpy(detections.class_id.astype(np.int64))
        if detections.mask is None:  # an image without objects
            with Image.open(path) as picture:
                W, H = picture.size
            masks = torch.zeros(0, H, W, dtype=torch.bool)
        else:
            masks = torch.from_numpy(detections.mask)
        out.append({"labels": labels, "masks": masks})
    return out
