"""``make data``: the real images, split and stored in ``data/processed``.

The images come from ``vitcourse.data`` (Fashion-MNIST or MNIST: a local copy that a
package installs, or the official files through torchvision). The splits are fixed
(the same images on every machine); ``data.*_size`` keeps a stratified subset. Each
split is saved as 8-bit images, ``data/processed/<split>.pt``, with a manifest saying
what was taken from where; a second ``make data`` with the same settings does nothing.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from ..command import run
from ..errors import ProjectError

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def dataset_class(name: str) -> type:
    """The ``vitcourse.data`` class of a data set (``fashion_mnist``, ``mnist``)."""
    from vitcourse.data import MNIST, FashionMNIST

    return {"fashion_mnist": FashionMNIST, "mnist": MNIST}[name]


def load_split(name: str, split: str, size: int | None, seed: int) -> dict[str, Any]:
    """One split as 8-bit images ``(N, 1, H, W)`` and labels ``(N,)``.

    Raises:
        ProjectError: the data cannot be read (no local copy and no network).
    """
    from vitcourse.data import DataUnavailableError

    try:
        dataset = dataset_class(name)(split, size=size, seed=seed, normalize=False)
    except DataUnavailableError as error:
        raise ProjectError(f"cannot read {name} ({split}): {error}") from None
    except ValueError as error:  # e.g. a size larger than the split
        raise ProjectError(f"data.{split}_size: {error}") from None
    images, labels = dataset.tensors()
    return {
        "images": images.mul(255)
        .round()
        .to(torch.uint8),  # (N, 1, H, W), as stored on disk
        "labels": labels,  # (N,) int64
        "classes": list(dataset.classes),
        "origin": dataset.origin,
    }


def manifest_of(config: dict[str, Any]) -> dict[str, Any]:
    """What the processed files depend on: the data section and the seed."""
    return {"data": config["data"], "seed": config["seed"]}


def make_dataset(config: dict[str, Any]) -> Path:
    """Write ``<paths.processed>/{train,val,test}.pt`` and ``manifest.json``.

    Returns:
        The processed folder.
    """
    folder = Path(config["paths"]["processed"])
    manifest_file = folder / "manifest.json"
    wanted = manifest_of(config)
    if (
        manifest_file.exists()
        and json.loads(manifest_file.read_text())["settings"] == wanted
    ):
        logger.info("data/processed is up to date (%s)", wanted)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    counts, origin = {}, None
    for split in SPLITS:
        part = load_split(
            config["data"]["dataset"],
            split,
            config["data"][f"{split}_size"],
            config["seed"],
        )
        torch.save(part, folder / f"{split}.pt")
        counts[split], origin = len(part["labels"]), part["origin"]
        logger.info("%s: %d images from %s", split, counts[split], origin)
    raw = Path(config["paths"]["raw"])
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "source.json").write_text(
        json.dumps({"dataset": config["data"]["dataset"], "origin": origin}, indent=2)
    )
    manifest_file.write_text(
        json.dumps({"settings": wanted, "counts": counts, "origin": origin}, indent=2)
    )
    return folder


def main(argv: list[str] | None = None) -> int:
    return run("data", make_dataset, argv)


if __name__ == "__main__":
    sys.exit(main())
