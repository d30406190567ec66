"""Static figures of an image cut into patches (matplotlib)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["plot_patch_grid", "plot_patch_sequence", "to_numpy_image"]


def to_numpy_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """An image as an ``(H, W, C)`` or ``(H, W)`` NumPy array in ``[0, 1]`` for plotting.

    Accepts ``(C, H, W)`` tensors (PyTorch layout), ``(H, W, C)`` arrays (skimage and
    PIL layout) and ``uint8`` or float values.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
        if image.ndim == 3 and image.shape[0] in (1, 3, 4):
            image = image.transpose(1, 2, 0)  # (H, W, C)
    image = np.asarray(image)
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    return np.clip(image, 0.0, 1.0)


def plot_patch_grid(
    image: torch.Tensor | np.ndarray,
    patch_size: int,
    ax: plt.Axes | None = None,
    show_index: bool = True,
    color: str = "white",
) -> plt.Axes:
    """Draw the image with the patch grid over it and each patch's index (raster order).

    A border that doesn't fill a whole patch is shaded: that is what ``pad=True`` pads.

    Args:
        image: ``(C, H, W)`` tensor or ``(H, W[, C])`` array.
        patch_size: side ``P`` of the patches.
        ax: axes to draw on (a new figure by default).
        show_index: write the token index in each patch (skipped above 400 patches).
        color: colour of the grid lines and numbers.

    Returns:
        The axes.
    """
    picture = to_numpy_image(image)
    height, width = picture.shape[:2]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6 * height / width))
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, extent=(0, width, height, 0))
    grid_h, grid_w = -(-height // patch_size), -(-width // patch_size)
    for row in range(grid_h + 1):
        ax.axhline(min(row * patch_size, grid_h * patch_size), color=color, linewidth=0.8)
    for col in range(grid_w + 1):
        ax.axvline(min(col * patch_size, grid_w * patch_size), color=color, linewidth=0.8)
    if height % patch_size or width % patch_size:  # the padded border
        ax.axhspan(height, grid_h * patch_size, color="0.5", alpha=0.6)
        ax.axvspan(width, grid_w * patch_size, color="0.5", alpha=0.6)
    if show_index and grid_h * grid_w <= 400:
        for index in range(grid_h * grid_w):
            row, col = divmod(index, grid_w)
            ax.text(
                (col + 0.5) * patch_size,
                (row + 0.5) * patch_size,
                str(index),
                color=color,
                ha="center",
                va="center",
                fontsize=max(5, min(11, 220 // max(grid_h, grid_w))),
            )
    ax.set_xlim(0, grid_w * patch_size)
    ax.set_ylim(grid_h * patch_size, 0)
    ax.set_title(f"{grid_h}×{grid_w} = {grid_h * grid_w} parches de {patch_size}×{patch_size}")
    ax.axis("off")
    return ax


def plot_patch_sequence(patches: torch.Tensor, patch_size: int, channels: int = 3, max_patches: int = 32) -> plt.Figure:
    """Show the first patches of a sequence side by side, as the encoder receives them.

    Args:
        patches: ``(N, P*P*C)`` flattened patches of one image (see :func:`~vitcourse.layers.patchify`).
        patch_size: side ``P``.
        channels: ``C``.
        max_patches: how many to draw.

    Returns:
        The figure.
    """
    count = min(max_patches, patches.shape[0])
    fig, axes = plt.subplots(1, count, figsize=(count * 0.5, 0.9))
    for index, ax in enumerate(np.atleast_1d(axes)):
        tile = patches[index].reshape(patch_size, patch_size, channels)  # (p1, p2, C)
        ax.imshow(to_numpy_image(tile))
        ax.set_title(str(index), fontsize=6)
        ax.axis("off")
    return fig
