"""From stored 8-bit images to what the model reads: normalisation, augmentation.

Every split is normalised once, when loaded, with the mean and standard deviation of the
data set's official training images. Training batches are then augmented all at once
(:class:`BatchAugment`: one random zoom, shift, rotation and flip per image, applied to
the whole batch by a single ``grid_sample`` call), which costs a fraction of per-image
transforms and runs wherever the batch is, GPU included.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..errors import ProjectError

logger = logging.getLogger(__name__)


def mean_std(dataset: str) -> tuple[float, float]:
    """Pixel mean and std (in ``[0, 1]``) of the data set's official training images."""
    from vitcourse.data import mnist

    return {
        "fashion_mnist": (mnist.FASHION_MEAN, mnist.FASHION_STD),
        "mnist": (mnist.MNIST_MEAN, mnist.MNIST_STD),
    }[dataset]


class ProcessedImages(Dataset):
    """A split of ``data/processed`` as normalised ``(image, label)`` pairs.

    Args:
        path: ``<split>.pt`` written by ``make data``.
        mean, std: the normalisation (pixels in ``[0, 1]``).

    Raises:
        ProjectError: the file is missing (run ``make data``).
    """

    def __init__(self, path: str | Path, mean: float = 0.0, std: float = 1.0) -> None:
        path = Path(path)
        if not path.exists():
            raise ProjectError(f"{path} does not exist: run `make data` first")
        stored = torch.load(path, weights_only=True)
        self.images, self.labels, self.classes = (
            stored["images"],
            stored["labels"],
            stored["classes"],
        )
        self.mean, self.std = mean, std
        self.inputs = (
            self.images.float() / 255 - mean
        ) / std  # (N, 1, H, W), once for all epochs

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.inputs[index], int(self.labels[index])


class BatchAugment:
    """Random zoom, shift, rotation and flip, one draw per image, for a whole batch.

    Args:
        background: the normalised value of a black pixel, to fill where the image left.
        flip: flip half of the images left-right (not for digits).
        scale: ``(low, high)`` zoom factors.
        shift: largest translation, as a fraction of the side.
        rotate: largest rotation, in degrees.
        seed: seeds the draws, so two runs see the same augmented batches.

    Used as ``fit(..., batch_transform=augment)``: ``(images, labels)`` in and out.
    """

    def __init__(
        self,
        background: float,
        flip: bool = True,
        scale: tuple[float, float] = (0.9, 1.1),
        shift: float = 0.1,
        rotate: float = 10.0,
        seed: int = 0,
    ) -> None:
        self.background, self.flip, self.scale = background, flip, tuple(scale)
        self.shift, self.rotate = shift, rotate
        self.generator = torch.Generator().manual_seed(seed)

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=self.generator)

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        B = len(images)
        zoom = self._uniform(B, *self.scale)
        angle = self._uniform(B, -self.rotate, self.rotate) * math.pi / 180
        mirror = (
            torch.where(torch.rand(B, generator=self.generator) < 0.5, -1.0, 1.0)
            if self.flip
            else torch.ones(B)
        )
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.zeros(B, 2, 3)  # output → input coordinates, in [-1, 1]
        theta[:, 0, 0], theta[:, 0, 1] = cos * mirror, -sin
        theta[:, 1, 0], theta[:, 1, 1] = sin * mirror, cos
        theta[:, :, 2] = self._uniform(2 * B, -2 * self.shift, 2 * self.shift).reshape(
            B, 2
        )
        theta = theta.to(images.device, images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        # grid_sample fills with 0; shifting by the background first makes it black.
        moved = (
            F.grid_sample(images - self.background, grid, align_corners=False)
            + self.background
        )
        return moved, labels


def load_split(config: dict[str, Any], split: str) -> ProcessedImages:
    """A processed split, normalised for the config's data set."""
    mean, std = mean_std(config["data"]["dataset"])
    return ProcessedImages(
        Path(config["paths"]["processed"]) / f"{split}.pt", mean, std
    )


def make_augment(config: dict[str, Any]) -> BatchAugment | None:
    """The batch augmentation of ``features`` (``None`` if ``augment`` is false)."""
    features = config["features"]
    if not features["augment"]:
        return None
    mean, std = mean_std(config["data"]["dataset"])
    return BatchAugment(
        background=-mean / std,
        flip=features["flip"],
        scale=features["scale"],
        shift=features["shift"],
        rotate=features["rotate"],
        seed=config["seed"],
    )


def make_loaders(config: dict[str, Any]) -> tuple[DataLoader, DataLoader]:
    """The training loader (shuffled with the config's seed), the validation loader."""
    batch_size = config["train"]["batch_size"]
    generator = torch.Generator().manual_seed(config["seed"])
    train = DataLoader(
        load_split(config, "train"), batch_size, shuffle=True, generator=generator
    )
    val = DataLoader(load_split(config, "val"), batch_size)
    logger.info(
        "loaders: %d training and %d validation images",
        len(train.dataset),
        len(val.dataset),
    )
    return train, val
