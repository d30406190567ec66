"""Figures of data augmentation: one image under several transforms, and a mixed batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..course.render import percent
from .patches import to_numpy_image

__all__ = ["plot_augmentations", "plot_mixed_batch"]


def _show(image: torch.Tensor) -> np.ndarray:
    """A transformed image for ``imshow``: undo nothing, just clip to ``[0, 1]``."""
    return to_numpy_image(image.float().clamp(0, 1) if isinstance(image, torch.Tensor) else image)


def plot_augmentations(
    image: torch.Tensor,
    transforms: Mapping[str, Callable] | Sequence[str] = ("none", "light", "medium", "heavy"),
    samples: int = 6,
    seed: int = 0,
    img_size: int | None = None,
) -> plt.Figure:
    """One row per transform: the original image, then ``samples`` random draws.

    Args:
        image: ``(C, H, W)`` float tensor in ``[0, 1]`` (or a PIL image).
        transforms: ``{name: transform}``, or augmentation level names for
            :func:`~vitcourse.data.augment.build_transform`.
        samples: augmented draws per row.
        seed: seeds the draws (the global RNG state is restored afterwards).
        img_size: output size for level names (default: the image's height).

    Returns:
        The figure.
    """
    if not isinstance(transforms, Mapping):
        from ..data.augment import build_transform

        size = img_size or (image.shape[-2] if isinstance(image, torch.Tensor) else image.size[1])
        transforms = {level: build_transform(level, size) for level in transforms}
    rows = len(transforms)
    fig, axes = plt.subplots(rows, samples + 1, figsize=(1.4 * (samples + 1), 1.5 * rows), squeeze=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for row, (name, transform) in enumerate(transforms.items()):
            axes[row, 0].imshow(_show(image))
            axes[row, 0].set_ylabel(name, fontsize=9)
            for col in range(1, samples + 1):
                axes[row, col].imshow(_show(transform(image)))
    axes[0, 0].set_title("original", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_mixed_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    mix: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    class_names: Sequence[str] | None = None,
    seed: int = 0,
) -> plt.Figure:
    """A batch after MixUp or CutMix, each image titled with its two largest label weights.

    Args:
        images: ``(B, C, H, W)`` in ``[0, 1]``.
        labels: ``(B,)`` class indices.
        mix: e.g. ``v2.MixUp(num_classes=C)`` or :func:`~vitcourse.data.augment.batch_mix`.
        class_names: names for the titles (default: indices).
        seed: seeds λ and the pairing (the global RNG state is restored afterwards).

    Returns:
        The figure.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mixed, targets = mix(images, labels)
    count = len(mixed)
    fig, axes = plt.subplots(1, count, figsize=(1.8 * count, 2.2), squeeze=False)
    for index, ax in enumerate(axes[0]):
        ax.imshow(_show(mixed[index]))
        weights, classes = targets[index].topk(2)
        parts = [
            f"{(class_names[c] if class_names else c)} {percent(w)}"
            for w, c in zip(weights.tolist(), classes.tolist())
            if w > 0.005
        ]
        ax.set_title("\n".join(parts), fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig
