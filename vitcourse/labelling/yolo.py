"""Labels in the YOLO format (boxes and polygons), the other format labelling tools export.

A YOLO data set is a folder of images, a folder of text files (one per image, one line
per object) and a ``data.yaml`` naming the classes. A line is ``class cx cy w h`` for a
box (detection) or ``class x1 y1 x2 y2 …`` for a polygon (segmentation), every
coordinate normalised by the image's width (x) or height (y) to ``[0, 1]``. A polygon
has no holes: a ring's inner hole is lost (its outer outline is kept), which the
round-trip test measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["read_yolo", "write_yolo", "yolo_lines"]


def _polygon(mask: torch.Tensor) -> np.ndarray | None:
    """The outline of a mask's largest part, ``(V, 2)`` pixel ``(x, y)``, or None if empty."""
    import supervision as sv

    polygons = sv.mask_to_polygons(mask.numpy().astype(bool))
    if not polygons:
        return None
    return max(polygons, key=len).astype(np.float64)


def yolo_lines(rows: Sequence[dict], image_size: tuple[int, int], kind: str = "polygons") -> list[str]:
    """One image's labels as YOLO text lines.

    Args:
        rows: rows of :func:`~vitcourse.labelling.label_images` (``label``, ``box`` as
            ``x0, y0, x1, y1`` pixels, ``mask``).
        image_size: ``(H, W)``.
        kind: ``"boxes"`` (``class cx cy w h``) or ``"polygons"`` (``class x1 y1 …``, the
            outline of each mask's largest part; an empty mask gives no line).

    Returns:
        The lines, without newlines, coordinates with 6 decimals.
    """
    if kind not in ("boxes", "polygons"):
        raise ValueError(f"kind must be 'boxes' or 'polygons', got {kind!r}")
    H, W = image_size
    lines = []
    for row in rows:
        if kind == "boxes":
            x0, y0, x1, y1 = (float(v) for v in row["box"])
            values = np.array([(x0 + x1) / 2 / W, (y0 + y1) / 2 / H, (x1 - x0) / W, (y1 - y0) / H])
        else:
            polygon = _polygon(row["mask"])
            if polygon is None:
                continue
            values = (polygon / np.array([W, H])).flatten()  # normalised (x, y)
        lines.append(f"{int(row['label'])} " + " ".join(f"{v:.6f}" for v in values))
    return lines


def write_yolo(
    folder: str | Path,
    images: torch.Tensor,
    labels: Sequence[Sequence[dict]],
    categories: Sequence[str],
    kind: str = "polygons",
) -> Path:
    """Write images and their labels as a YOLO data set.

    Args:
        folder: where (created); ``images/``, ``labels/`` and ``data.yaml`` go inside.
        images: ``(N, 3, H, W)`` in ``[0, 1]`` (or a list of ``(3, H, W)``).
        labels: per image, rows of :func:`~vitcourse.labelling.label_images`.
        categories: class names, in class order.
        kind: ``"polygons"`` (segmentation) or ``"boxes"`` (detection); see :func:`yolo_lines`.

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
        lines = yolo_lines(rows, (H, W), kind)
        (folder / "labels" / f"{index:05d}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    names = "\n".join(f"  - {name}" for name in categories)
    data_yaml = folder / "data.yaml"
    data_yaml.write_text(f"nc: {len(categories)}\nnames:\n{names}\n", encoding="utf-8")
    return data_yaml


def read_yolo(folder: str | Path) -> list[dict]:
    """Read a YOLO data set back with ``supervision`` (a reader the tools share).

    Returns:
        Per image, in file order: ``{"labels": (K,) int, "boxes": (K, 4) x0, y0, x1, y1
        pixels, "masks": (K, H, W) bool}`` (a box line's mask is its rectangle).
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
        boxes = torch.from_numpy(np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4))
        if detections.mask is None:  # an image without objects
            with Image.open(path) as picture:
                W, H = picture.size
            masks = torch.zeros(0, H, W, dtype=torch.bool)
        else:
            masks = torch.from_numpy(detections.mask)
        out.append({"labels": labels, "boxes": boxes, "masks": masks})
    return out
