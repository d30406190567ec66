"""From stored 8-bit images to the tensors the model reads: normalisation, augmentation, loaders.

Training images are augmented (``features.augment``: a level of
``vitcourse.data.augment``); validation and test images only normalised, with the mean
and standard deviation of the data set's official training images.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import ProjectError

logger = logging.getLogger(__name__)


def mean_std(dataset: str) -> tuple[float, float]:
    """The pixel mean and std (in ``[0, 1]``) of the data set's official training images."""
    from vitcourse.data import mnist

    return {
        "fashion_mnist": (mnist.FASHION_MEAN, mnist.FASHION_STD),
        "mnist": (mnist.MNIST_MEAN, mnist.MNIST_STD),
    }[dataset]


class ProcessedImages(Dataset):
    """A split of ``data/processed``: ``(image, label)`` pairs, transformed on the fly.

    Args:
        path: ``<split>.pt`` written by ``make data``.
        transform: applied to each ``(1, H, W)`` uint8 image.

    Raises:
        ProjectError: the file is missing (run ``make data``).
    """

    def __init__(self, path: str | Path, transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        path = Path(path)
        if not path.exists():
            raise ProjectError(f"{path} does not exist: run `make data` first")
        stored = torch.load(path, weights_only=True)
        self.images, self.labels, self.classes = stored["images"], stored["labels"], stored["classes"]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


def make_transform(config: dict[str, Any], train: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """Augmentation (training only) + scaling to ``[0, 1]`` + normalisation."""
    from vitcourse.data import build_transform

    mean, std = mean_std(config["data"]["dataset"])
    level = config["features"]["augment"] if train else "none"
    return build_transform(level, config["model"]["config"]["img_size"], train=train, mean=[mean], std=[std])


def load_split(config: dict[str, Any], split: str, train: bool = False) -> ProcessedImages:
    """A processed split with its transform (augmented when ``train``)."""
    path = Path(config["paths"]["processed"]) / f"{split}.pt"
    return ProcessedImages(path, make_transform(config, train))


def make_loaders(config: dict[str, Any]) -> tuple[DataLoader, DataLoader]:
    """The training loader (augmented, shuffled) and the validation loader."""
    batch_size = config["train"]["batch_size"]
    generator = torch.Generator().manual_seed(config["seed"])
    train = DataLoader(load_split(config, "train", train=True), batch_size, shuffle=True, generator=generator)
    val = DataLoader(load_split(config, "val"), batch_size)
    logger.info("loaders: %d training and %d validation images", len(train.dataset), len(val.dataset))
    return train, val
