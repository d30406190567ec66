"""Data augmentation presets, from none to heavy, built from ``torchvision.transforms.v2``.

ViTs have less built-in bias than CNNs (no locality, no translation equivariance), so
on small data they lean on augmentation and regularisation. AugReg (Steiner et al.,
2021) showed that more of both helps, up to a point that depends on data size. The
presets here follow that ladder:

======  ===================  =====  ==============  =========================  ==========
level   random resized crop  flip   RandAugment     MixUp / CutMix (batch)     erasing
======  ===================  =====  ==============  =========================  ==========
none    —                    —      —               —                          —
light   scale 0.8–1          yes    —               —                          —
medium  scale 0.6–1          yes    2 ops, mag. 9   MixUp α = 0.2              —
heavy   scale 0.35–1         yes    2 ops, mag. 15  MixUp α = 0.8 or CutMix 1  p = 0.25
======  ===================  =====  ==============  =========================  ==========

Per-image transforms go into the dataset (:func:`build_transform`); MixUp and CutMix
mix whole batches, so they go into the training loop
(``fit(..., batch_transform=batch_mix("heavy", num_classes))``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torchvision.transforms import v2

__all__ = ["LEVELS", "PRESETS", "AugmentPreset", "ShiftFlip", "batch_mix", "build_transform"]


@dataclass(frozen=True)
class AugmentPreset:
    """The knobs of one augmentation level.

    Attributes:
        crop_scale: area range of ``RandomResizedCrop`` (``None``: no crop).
        flip: random horizontal flips.
        randaugment: ``(num_ops, magnitude)`` of ``RandAugment`` (magnitude out of 30), or ``None``.
        mixup_alpha: Beta(α, α) of MixUp (0: off).
        cutmix_alpha: Beta(α, α) of CutMix (0: off); with both on, each batch picks one.
        erasing: probability of ``RandomErasing`` (0: off).
    """

    crop_scale: tuple[float, float] | None = None
    flip: bool = False
    randaugment: tuple[int, int] | None = None
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    erasing: float = 0.0


PRESETS: dict[str, AugmentPreset] = {
    "none": AugmentPreset(),
    "light": AugmentPreset(crop_scale=(0.8, 1.0), flip=True),
    "medium": AugmentPreset(crop_scale=(0.6, 1.0), flip=True, randaugment=(2, 9), mixup_alpha=0.2),
    "heavy": AugmentPreset(
        crop_scale=(0.35, 1.0), flip=True, randaugment=(2, 15), mixup_alpha=0.8, cutmix_alpha=1.0, erasing=0.25
    ),
}

LEVELS: tuple[str, ...] = tuple(PRESETS)


def _preset(level: str | AugmentPreset) -> AugmentPreset:
    if isinstance(level, AugmentPreset):
        return level
    if level not in PRESETS:
        raise ValueError(f"unknown augmentation level {level!r}; choose one of {LEVELS} or pass an AugmentPreset")
    return PRESETS[level]


def build_transform(
    level: str | AugmentPreset = "none",
    img_size: int | tuple[int, int] = 32,
    train: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> v2.Compose:
    """Per-image transform for a level; accepts PIL images, ``uint8`` or ``[0, 1]`` float tensors.

    Args:
        level: ``"none"``, ``"light"``, ``"medium"``, ``"heavy"`` or an :class:`AugmentPreset`.
        img_size: output size ``H`` or ``(H, W)``.
        train: ``False`` gives the evaluation transform (resize + centre crop, no randomness).
        mean, std: per-channel normalisation after augmenting (``None``: keep ``[0, 1]``).

    Returns:
        A ``v2.Compose`` producing ``(C, H, W)`` float32 tensors.
    """
    from torchvision.transforms import v2  # here: importing torchvision costs seconds of CPU

    preset = _preset(level)
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    # RandAugment's colour operations (posterize, solarize, ...) are defined on 8-bit images.
    steps: list[Callable] = [v2.ToImage(), v2.ToDtype(torch.uint8, scale=True)]
    if train and preset.crop_scale is not None:
        steps.append(v2.RandomResizedCrop(size, scale=preset.crop_scale, antialias=True))
    else:
        steps += [v2.Resize(min(size), antialias=True), v2.CenterCrop(size)]
    if train and preset.flip:
        steps.append(v2.RandomHorizontalFlip())
    if train and preset.randaugment is not None:
        num_ops, magnitude = preset.randaugment
        steps.append(v2.RandAugment(num_ops=num_ops, magnitude=magnitude))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if mean is not None and std is not None:
        steps.append(v2.Normalize(mean=list(mean), std=list(std)))
    if train and preset.erasing > 0:
        steps.append(v2.RandomErasing(p=preset.erasing))
    return v2.Compose(steps)


def batch_mix(
    level: str | AugmentPreset, num_classes: int
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None:
    """Batch-level MixUp/CutMix of a level, for ``fit(..., batch_transform=...)``.

    MixUp blends two images and their labels with a weight λ ~ Beta(α, α); CutMix pastes
    a box of one image into another and mixes the labels by the box's area.

    Args:
        level: augmentation level or preset.
        num_classes: number of classes (the targets become ``(B, num_classes)`` probabilities).

    Returns:
        ``(images, labels) -> (images, soft_targets)``, or ``None`` if the level mixes nothing.
    """
    from torchvision.transforms import v2

    preset = _preset(level)
    mixers = []
    if preset.mixup_alpha > 0:
        mixers.append(v2.MixUp(alpha=preset.mixup_alpha, num_classes=num_classes))
    if preset.cutmix_alpha > 0:
        mixers.append(v2.CutMix(alpha=preset.cutmix_alpha, num_classes=num_classes))
    if not mixers:
        return None
    return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)


class ShiftFlip:
    """Shift an image tensor by up to ``max_shift`` pixels and flip it left-right at random.

    The cheap augmentation of small grey images such as Fashion-MNIST: the border that a
    shift uncovers is filled with ``fill`` (the normalised value of a black pixel, so the
    background stays background). Works on already normalised tensors, unlike
    :func:`build_transform`, which wants ``[0, 1]`` or ``uint8`` images.

    Args:
        max_shift: largest shift in pixels along each axis (0: none).
        flip: flip with probability 1/2.
        fill: value of the uncovered pixels.

    Shapes:
        ``(C, H, W)`` → ``(C, H, W)``.
    """

    def __init__(self, max_shift: int = 2, flip: bool = True, fill: float = 0.0) -> None:
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {max_shift}")
        self.max_shift, self.flip, self.fill = max_shift, flip, fill

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        s = self.max_shift
        if s:
            _, H, W = image.shape
            padded = torch.nn.functional.pad(image, (s, s, s, s), value=self.fill)  # (C, H + 2s, W + 2s)
            dy, dx = torch.randint(0, 2 * s + 1, (2,)).tolist()
            image = padded[:, dy : dy + H, dx : dx + W]
        if self.flip and torch.rand(()) < 0.5:
            image = image.flip(-1)
        return image

    def __repr__(self) -> str:
        return f"ShiftFlip(max_shift={self.max_shift}, flip={self.flip}, fill={self.fill:.3f})"
