"""Labels as Label Studio tasks (polygons), checked by Label Studio's own converter.

Label Studio imports pre-annotations as a JSON list of tasks: each task names its image
(``data.image``) and carries ``predictions`` or ``annotations`` whose ``result`` lists
regions; a polygon region gives its vertices in **percent** of the image's width and
height. A labelling configuration (XML) declares the image and the label names.
``label-studio-converter`` (the library behind Label Studio's export button) turns such
tasks into COCO; :func:`label_studio_to_coco` runs it so a test can compare its COCO with
ours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .yolo import _polygon

__all__ = ["label_config", "label_studio_to_coco", "to_label_studio"]


def label_config(categories: Sequence[str]) -> str:
    """Label Studio's labelling configuration: an image and one polygon label per class."""
    labels = "".join(f'<Label value="{name}"/>' for name in categories)
    return (
        '<View><Image name="image" value="$image"/>'
        f'<PolygonLabels name="label" toName="image">{labels}</PolygonLabels></View>'
    )


def to_label_studio(
    labels: Sequence[Sequence[dict]],
    categories: Sequence[str],
    image_paths: Sequence[str],
    image_size: int,
) -> list[dict]:
    """Labels as Label Studio tasks with polygon annotations.

    Args:
        labels: per image, rows of :func:`~vitcourse.labelling.label_images`.
        categories: class names, in class order.
        image_paths: where each image is (what ``data.image`` says).
        image_size: side of the square images.

    Returns:
        The task list (JSON-serialisable).
    """
    tasks = []
    for path, rows in zip(image_paths, labels):
        result = []
        for k, row in enumerate(rows):
            polygon = _polygon(row["mask"])
            if polygon is None:
                continue
            points = (polygon * 100 / image_size).tolist()  # percent of the side
            result.append({
                "id": f"r{k}",
                "from_name": "label",
                "to_name": "image",
                "type": "polygonlabels",
                "original_width": image_size,
                "original_height": image_size,
                "value": {"points": points, "polygonlabels": [categories[row["label"]]]},
            })  # fmt: skip
        annotation = {"id": len(tasks) + 1, "result": result}
        task = {"id": len(tasks) + 1, "data": {"image": str(path)}}
        tasks.append({**task, "annotations": [annotation]})
    return tasks


def label_studio_to_coco(tasks: list[dict], categories: Sequence[str], folder: str | Path) -> dict:
    """COCO made from the tasks by ``label-studio-converter`` (Label Studio's exporter).

    Args:
        tasks: from :func:`to_label_studio`; their images must exist.
        categories: class names.
        folder: a working folder for the task file and the export.

    Returns:
        The exported COCO dictionary (polygons in pixels, categories numbered from 0).
    """
    from label_studio_converter import Converter

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tasks_file = folder / "tasks.json"
    tasks_file.write_text(json.dumps(tasks), encoding="utf-8")
    converter = Converter(label_config(categories), project_dir=str(folder), download_resources=False)
    converter.convert_to_coco(str(tasks_file), str(folder / "coco"), is_dir=False)
    return json.loads((folder / "coco" / "result.json").read_text(encoding="utf-8"))
