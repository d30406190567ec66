"""scikit-learn's handwritten digits as a PyTorch dataset: real data that needs no download.

1,797 grey 8×8 images of the digits 0–9 (UCI "Optical Recognition of Handwritten
Digits"), pixel values 0–16. The split is fixed (stratified, see ``_split_indices``): 1,257 train,
180 validation, 360 test images, the same on every machine, so accuracies in the
book can be compared.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["DIGIT_SPLIT_SIZES", "DigitsDataset"]

DIGIT_SPLIT_SIZES: dict[str, int] = {"train": 1257, "val": 180, "test": 360}
"""Images per split (fixed: the split never depends on a seed argument)."""


@functools.lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Pixels in ``[0, 1]`` ``(1797, 8, 8)``, labels ``(1797,)`` and the split indices (read once)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.images.astype(np.float32) / 16.0
    return pixels, digits.target, _split_indices(digits.target)


def _split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Fixed stratified split: line the images up class by class (shuffled inside each class
    with seed 0), then every 5th is test and every 8th of the rest is validation."""
    shuffled = np.random.default_rng(0).permutation(len(labels))
    by_class = shuffled[np.argsort(labels[shuffled], kind="stable")]
    test, rest = by_class[0::5], np.delete(by_class, np.s_[0::5])
    val, train = rest[0::8], np.delete(rest, np.s_[0::8])
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


class DigitsDataset(Dataset):
    """The sklearn digits, optionally upscaled and standardised.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (fixed, see :data:`DIGIT_SPLIT_SIZES`).
        img_size: side in pixels; 8 keeps the originals, larger sizes upscale bilinearly.
        channels: 1 (grey) or 3 (the grey copied, for models built for RGB).
        normalize: standardise with the training split's mean and std (else ``[0, 1]``).
        transform: applied to each ``(channels, img_size, img_size)`` image.

    Items:
        ``(image, label)``: float32 ``(channels, img_size, img_size)`` and an int 0–9.

    Attributes:
        images: ``(N, channels, img_size, img_size)``; ``labels``: ``(N,)`` int64.
        mean, std: the training-split statistics used by ``normalize``.
    """

    classes: tuple[str, ...] = tuple(str(digit) for digit in range(10))

    def __init__(
        self,
        split: str = "train",
        img_size: int = 8,
        channels: int = 1,
        normalize: bool = True,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if split not in DIGIT_SPLIT_SIZES:
            raise ValueError(f"split must be one of {tuple(DIGIT_SPLIT_SIZES)}, got {split!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if img_size < 8:
            raise ValueError(f"img_size must be at least 8 (the original size), got {img_size}")
        pixels, targets, indices = _load()  # (1797, 8, 8) in [0, 1], (1797,), split -> indices
        train_pixels = pixels[indices["train"]]
        self.mean, self.std = float(train_pixels.mean()), float(train_pixels.std())
        images = torch.from_numpy(pixels[indices[split]]).unsqueeze(1)  # (N, 1, 8, 8)
        if img_size != 8:
            images = F.interpolate(images, size=(img_size, img_size), mode="bilinear", align_corners=False)
        if normalize:
            images = (images - self.mean) / self.std
        self.images = images.expand(-1, channels, -1, -1).contiguous()  # (N, channels, H, W)
        self.labels = torch.from_numpy(targets[indices[split]]).long()
        self.split, self.img_size, self.transform = split, img_size, transform

    @property
    def num_classes(self) -> int:
        """10."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])

    def __repr__(self) -> str:
        return f"DigitsDataset(split={self.split!r}, size={len(self)}, img_size={self.img_size})"
