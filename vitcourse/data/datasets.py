"""PyTorch datasets over the generated world: classification, detection/segmentation, text lines.

Every item is drawn from the seed ``(seed, split, index)``, so

* the same arguments give the same tensors, on any machine and in any order;
* ``train``, ``val`` and ``test`` never share an image (different seed streams);
* item ``i`` does not depend on the dataset's size (a larger set extends a smaller one).

Classes (label → English id, Spanish name): 0 circle *círculo*, 1 square *cuadrado*,
2 triangle *triángulo*, 3 star *estrella*, 4 cross *cruz*, 5 ring *anillo*,
6 heart *corazón*, 7 crescent *media luna*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .shapes import SHAPES
from .text import generate_text_line
from .world import WorldConfig, generate

__all__ = [
    "CLASSIFICATION_WORLD",
    "SHAPES_MEAN",
    "SHAPES_STD",
    "SPLITS",
    "ShapesClassification",
    "ShapesDetection",
    "TextLines",
    "detection_collate",
    "text_collate",
]

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
"""Split name → the number mixed into every item's seed."""

DEFAULT_SIZES: dict[str, int] = {"train": 10_000, "val": 1_000, "test": 2_000}

CLASSIFICATION_WORLD = WorldConfig(radius=(0.22, 0.40), rotation=0.0)
"""The classification task's world: one upright shape, 22 % to 40 % of the side in radius.

The general world (:class:`~vitcourse.data.world.WorldConfig`'s defaults) turns shapes
freely and makes them as small as 12 % of the side. A tiny ViT trained from scratch on
10,000 such images stays far below 95 % after CPU minutes (measured with 8×8 patches,
D=64, 4 blocks, 20-25 epochs: 59 % with free turns and radii from 16 %, 83 % with turns
up to 30°, 93 % up to 15°, 99 % upright): with no convolutional bias it must learn
every rotated, shrunken outline from data, which is the course's point about ViTs and
data scale. This preset keeps colours, backgrounds, positions and sizes varied but the
task learnable in minutes (98.5 % test accuracy with the ``vit_shapes`` recipe, 80 s of CPU).
"""

SHAPES_MEAN: tuple[float, float, float] = (0.52, 0.51, 0.51)
SHAPES_STD: tuple[float, float, float] = (0.31, 0.35, 0.31)
"""Per-channel mean and std of the world's images (measured on 3,000 training images,
rounded), used by ``normalize=True``."""


def _split_id(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    return SPLITS[split]


def _size(size: int | None, split: str) -> int:
    size = DEFAULT_SIZES[split] if size is None else size
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    return size


class ShapesClassification(Dataset):
    """One shape per image; the label is its class.

    Images are rendered once, when the dataset is built (about 3,000 per second at
    32×32 on one CPU core), and kept as ``uint8``. Labels cycle through the classes
    (``index % num_classes``), so every prefix of the dataset is balanced.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: number of images (default 10,000 / 1,000 / 2,000 by split).
        seed: base seed of the world.
        img_size: image side in pixels.
        transform: applied to each ``(3, H, W)`` float image in ``[0, 1]``.
        normalize: after ``transform``, standardise with :data:`SHAPES_MEAN` and
            :data:`SHAPES_STD` (zero-centred inputs help a ViT's linear patch embedding).
        config: a :class:`~vitcourse.data.world.WorldConfig` for finer control (default
            :data:`CLASSIFICATION_WORLD`); ``img_size`` replaces its size and it must allow
            one shape per image.

    Items:
        ``(image, label)``: ``(3, H, W)`` float32, in ``[0, 1]`` unless ``normalize``, and an int.

    Attributes:
        images: ``(N, 3, H, W)`` uint8; ``labels``: ``(N,)`` int64.
        captions, captions_en: one description per image.
        classes: English identifiers in label order; ``classes_es`` the Spanish names.
    """

    def __init__(
        self,
        split: str = "train",
        size: int | None = None,
        seed: int = 0,
        img_size: int = 32,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        normalize: bool = False,
        config: WorldConfig | None = None,
    ) -> None:
        config = replace(config or CLASSIFICATION_WORLD, img_size=img_size)
        if config.max_shapes != 1:
            raise ValueError(f"classification needs one shape per image, got max_shapes={config.max_shapes}")
        split_id, size = _split_id(split), _size(size, split)
        self.split, self.seed, self.config, self.transform, self.normalize = split, seed, config, transform, normalize
        self.classes: tuple[str, ...] = config.shapes
        self.classes_es: tuple[str, ...] = tuple(SHAPES[name].name_es for name in config.shapes)
        H, W = config.img_size
        labels = np.arange(size) % config.num_classes
        images = np.empty((size, 3, H, W), dtype=np.uint8)
        self.captions: list[str] = []
        self.captions_en: list[str] = []
        for index in range(size):
            sample = generate((seed, split_id, index), config, label=int(labels[index]))
            # NumPy, not torch, inside the loop: tiny torch ops between NumPy calls make
            # their thread pools fight over the cores (10x slower on a busy 2-core machine).
            images[index] = np.round(sample.image.numpy() * 255)
            self.captions.append(sample.caption)
            self.captions_en.append(sample.caption_en)
        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels).long()

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def sample(self, index: int):
        """The full :class:`~vitcourse.data.world.Sample` of item ``index``: the same drawing,
        with its mask, box and placement (drawn again from its seed; the dataset keeps only
        the pixels)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} images")
        return generate((self.seed, SPLITS[self.split], index), self.config, label=int(self.labels[index]))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index].float() / 255.0
        if self.transform is not None:
            image = self.transform(image)
        if self.normalize:
            mean, std = torch.tensor(SHAPES_MEAN).view(3, 1, 1), torch.tensor(SHAPES_STD).view(3, 1, 1)
            image = (image - mean) / std
        return image, int(self.labels[index])

    def __repr__(self) -> str:
        return (
            f"ShapesClassification(split={self.split!r}, size={len(self)}, seed={self.seed}, "
            f"img_size={self.config.img_size}, classes={len(self.classes)})"
        )


class ShapesDetection(Dataset):
    """Several shapes per image with boxes, labels, masks and captions (detection, segmentation, grounding).

    Items are drawn when asked for (deterministically), so large datasets cost nothing
    up front.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: number of images (default 10,000 / 1,000 / 2,000 by split).
        seed: base seed of the world.
        img_size: image side in pixels.
        min_shapes, max_shapes: shapes per image.
        text_probability: chance of a word written in free space (its box is in the target).
        transform: a ``torchvision.transforms.v2`` transform called as
            ``transform(image, target)``; boxes and masks travel as ``tv_tensors`` so
            flips and crops move them with the image.
        config: a :class:`~vitcourse.data.world.WorldConfig` for finer control; the
            arguments above replace its fields.

    Items:
        ``(image, target)``: ``(3, H, W)`` float32 in ``[0, 1]`` and a dict with
        ``boxes`` ``(K, 4)`` float32 xyxy pixels, ``labels`` ``(K,)`` int64,
        ``masks`` ``(K, H, W)`` bool, ``caption``, ``caption_en``, ``text``,
        ``image_id`` (the index).
    """

    def __init__(
        self,
        split: str = "train",
        size: int | None = None,
        seed: int = 0,
        img_size: int = 64,
        min_shapes: int = 1,
        max_shapes: int = 4,
        text_probability: float = 0.0,
        transform: Callable[..., Any] | None = None,
        config: WorldConfig | None = None,
    ) -> None:
        self.config = replace(
            config or WorldConfig(),
            img_size=img_size,
            min_shapes=min_shapes,
            max_shapes=max_shapes,
            text_probability=text_probability,
        )
        self.split, self.seed, self.transform = split, seed, transform
        self._split_id, self._size = _split_id(split), _size(size, split)
        self.classes: tuple[str, ...] = self.config.shapes
        self.classes_es: tuple[str, ...] = tuple(SHAPES[name].name_es for name in self.config.shapes)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        if not 0 <= index < self._size:
            raise IndexError(f"index {index} out of range for a dataset of {self._size} images")
        sample = generate((self.seed, self._split_id, index), self.config)
        target = {
            "boxes": sample.boxes,
            "labels": sample.labels,
            "masks": sample.masks,
            "caption": sample.caption,
            "caption_en": sample.caption_en,
            "text": sample.text,
            "image_id": index,
        }
        image = sample.image
        if self.transform is not None:
            image, target = self._apply_transform(image, target)
        return image, target

    def _apply_transform(self, image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        from torchvision import tv_tensors

        canvas = tuple(image.shape[-2:])
        target = dict(target)
        target["boxes"] = tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=canvas)
        target["masks"] = tv_tensors.Mask(target["masks"])
        image, target = self.transform(tv_tensors.Image(image), target)
        for key in ("boxes", "masks"):
            target[key] = target[key].as_subclass(torch.Tensor)
        return image.as_subclass(torch.Tensor), target


def detection_collate(batch: list[tuple[torch.Tensor, dict[str, Any]]]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Stack images, keep targets as a list (each image has its own number of shapes).

    Args:
        batch: ``B`` items of :class:`ShapesDetection`.

    Returns:
        ``(images, targets)``: ``(B, 3, H, W)`` and a list of ``B`` target dicts.
    """
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


class TextLines(Dataset):
    """Images of one line of Spanish words, for OCR (text recognition) and CER/WER.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: number of images (default 10,000 / 1,000 / 2,000 by split).
        seed: base seed.
        img_size: ``(H, W)``.
        max_words: at most this many words per line.
        font: ``"dejavu"`` (accents drawn) or ``"pillow"`` (ASCII only).
        transform: applied to each ``(3, H, W)`` float image.

    Items:
        ``(image, text)``; the word boxes are available from :meth:`sample`.
    """

    def __init__(
        self,
        split: str = "train",
        size: int | None = None,
        seed: int = 0,
        img_size: tuple[int, int] = (32, 128),
        max_words: int = 3,
        font: str = "dejavu",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.split, self.seed, self.img_size = split, seed, tuple(img_size)
        self.max_words, self.font, self.transform = max_words, font, transform
        self._split_id, self._size = _split_id(split), _size(size, split)

    def __len__(self) -> int:
        return self._size

    def sample(self, index: int):
        """The full :class:`~vitcourse.data.text.TextSample` (image, text, words, boxes) of item ``index``."""
        if not 0 <= index < self._size:
            raise IndexError(f"index {index} out of range for a dataset of {self._size} images")
        return generate_text_line(
            (self.seed, self._split_id, index), self.img_size, max_words=self.max_words, font=self.font
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        sample = self.sample(index)
        image = sample.image if self.transform is None else self.transform(sample.image)
        return image, sample.text


def text_collate(batch: list[tuple[torch.Tensor, str]]) -> tuple[torch.Tensor, list[str]]:
    """Stack images, keep the strings as a list: ``((B, 3, H, W), [text, ...])``."""
    images, texts = zip(*batch)
    return torch.stack(images), list(texts)
