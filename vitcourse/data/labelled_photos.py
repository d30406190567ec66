"""Labelled test photos of CIFAR-10, ImageNet and others, from foolbox's data folder.

The PyPI package ``foolbox`` 3.3.4 ships 20 test images of each of CIFAR-10 (32×32),
CIFAR-100 (32×32), ImageNet (512 px or more), Fashion-MNIST and MNIST (28×28), their
labels in the file names (``cifar10_03_0.png``: the 4th image, class 0). The files are
read from :func:`vitcourse.data.sources.path` ``("foolbox_images")``; foolbox itself is
never imported or installed.

>>> photos = FoolboxPhotos("cifar10")
>>> image, label = photos[0]            # (3, 32, 32) in [0, 1], 3
>>> photos.label_names[0]               # 'gato'
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from . import sources
from .mnist import FASHION_CLASSES

__all__ = ["CIFAR10_CLASSES_ES", "FOOLBOX_SETS", "FoolboxPhotos", "imagenet_classes"]

FOOLBOX_SETS: dict[str, str] = {
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "imagenet": "imagenet",
    "fashion_mnist": "fashionMNIST",
    "mnist": "mnist",
}
"""Our name of each set → the prefix of its files in foolbox's data folder."""

CIFAR10_CLASSES_ES: tuple[str, ...] = (
    "avión",
    "automóvil",
    "pájaro",
    "gato",
    "ciervo",
    "perro",
    "rana",
    "caballo",
    "barco",
    "camión",
)
"""CIFAR-10's classes in label order, in Spanish (English ids in ``data.CIFAR10_CLASSES``)."""


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet class names (English), in label order, as torchvision lists them."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def _classes(dataset: str) -> tuple[str, ...]:
    if dataset == "cifar10":
        return CIFAR10_CLASSES_ES
    if dataset == "imagenet":
        return imagenet_classes()
    if dataset == "fashion_mnist":
        return FASHION_CLASSES
    if dataset == "mnist":
        return tuple(str(digit) for digit in range(10))
    return tuple(str(label) for label in range(100))  # CIFAR-100's names aren't shipped


class FoolboxPhotos(Dataset):
    """The 20 labelled test photos of one data set, as tensors.

    Args:
        dataset: one of :data:`FOOLBOX_SETS` (``"cifar10"``, ``"imagenet"``, ...).
        img_size: resize every image to this square side (bilinear, antialiased);
            ``None`` keeps the original sizes (ImageNet's differ from photo to photo).
        transform: applied to each ``(C, H, W)`` image in ``[0, 1]`` after resizing.

    Items:
        ``(image, label)``: float32 ``(C, H, W)`` in ``[0, 1]`` (``C`` = 3, or 1 for the
        grey sets) and the int label in the data set's own numbering.

    Attributes:
        files: the image paths, in the files' order; labels: ``(20,)`` int64.
        classes: the names of all classes (Spanish for CIFAR-10 and Fashion-MNIST,
            torchvision's English names for ImageNet, numbers for CIFAR-100 and MNIST).
        label_names: the class name of each photo.

    Raises:
        DataUnavailableError: foolbox's data folder can't be found or fetched; the
            message names the command that fetches it.
    """

    def __init__(
        self,
        dataset: str = "cifar10",
        img_size: int | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if dataset not in FOOLBOX_SETS:
            raise ValueError(f"dataset must be one of {tuple(FOOLBOX_SETS)}, got {dataset!r}")
        folder = sources.path("foolbox_images")
        prefix = FOOLBOX_SETS[dataset]
        self.files: list[Path] = sorted(
            f for f in folder.iterdir() if f.stem.rsplit("_", 2)[0] == prefix and f.suffix in (".png", ".jpg")
        )
        self.labels = torch.tensor([int(f.stem.rsplit("_", 1)[1]) for f in self.files], dtype=torch.int64)
        self.classes = _classes(dataset)
        self.label_names = [self.classes[int(label)] for label in self.labels]
        self.dataset, self.img_size, self.transform = dataset, img_size, transform

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> torch.Tensor:
        """Photo ``index`` as a float ``(C, H, W)`` tensor in ``[0, 1]``, resized if asked."""
        from PIL import Image

        with Image.open(self.files[index]) as photo:
            array = np.asarray(photo.convert("L" if photo.mode in ("L", "1") else "RGB"))
        image = torch.from_numpy(array.copy()).float().div_(255.0)
        image = image[None] if image.ndim == 2 else image.permute(2, 0, 1)  # (C, H, W)
        if self.img_size is not None:
            size = (self.img_size, self.img_size)
            image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)
            image = image[0].clamp_(0.0, 1.0)
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.load(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])

    def __repr__(self) -> str:
        return f"FoolboxPhotos({self.dataset!r}, size={len(self)}, img_size={self.img_size})"
