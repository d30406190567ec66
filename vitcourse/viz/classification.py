"""Figures of a classifier's results: the confusion matrix and a grid of predictions (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

from ..course.render import percent
from .patches import to_numpy_image

__all__ = ["plot_confusion_matrix", "plot_prediction_grid"]

CORRECT, WRONG = "#1a7f37", "#cf222e"


def plot_confusion_matrix(
    confusion: torch.Tensor,
    class_names: Sequence[str],
    normalize: bool = True,
    ax: plt.Axes | None = None,
    title: str = "Matriz de confusión",
) -> plt.Axes:
    """Draw a confusion matrix, rows the true class and columns the prediction.

    Args:
        confusion: ``(C, C)`` counts, as :func:`vitcourse.train.confusion_matrix` returns them.
        class_names: ``C`` names, in label order.
        normalize: colour and label each row as fractions of its true class (the
            diagonal is then each class's recall); the counts are written below.
        ax: where to draw (default: a new figure).
        title: the axes' title.

    Returns:
        The axes.
    """
    counts = torch.as_tensor(confusion).double().cpu()
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(class_names):
        raise ValueError(
            f"expected a square (C, C) confusion matrix with C = {len(class_names)} class names, "
            f"got shape {tuple(counts.shape)}"
        )
    values = counts / counts.sum(dim=1, keepdim=True).clamp(min=1) if normalize else counts
    size = len(class_names)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * size + 2.5, 0.55 * size + 2))
    image = ax.imshow(values.numpy(), cmap="Blues", vmin=0, vmax=1 if normalize else None)
    for i in range(size):
        for j in range(size):
            if counts[i, j] == 0:
                continue
            text = f"{values[i, j]:.2f}\n({int(counts[i, j])})" if normalize else f"{int(counts[i, j])}"
            dark = values[i, j] > (0.5 if normalize else values.max() / 2)
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(size), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(size), class_names, fontsize=8)
    ax.set_xlabel("predicción")
    ax.set_ylabel("clase real")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fracción de la clase real" if normalize else "")
    return ax


def plot_prediction_grid(
    images: torch.Tensor,
    targets: torch.Tensor,
    preds: torch.Tensor,
    class_names: Sequence[str],
    probs: torch.Tensor | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    ncols: int = 8,
) -> plt.Figure:
    """A grid of images titled with their prediction, framed green when right and red when wrong.

    Args:
        images: ``(B, C, H, W)``, in ``[0, 1]`` or standardised with ``mean``/``std``.
        targets: ``(B,)`` true classes.
        preds: ``(B,)`` predicted classes.
        class_names: names in label order.
        probs: optional ``(B, num_classes)`` probabilities; the title then shows the
            predicted class's probability.
        mean, std: per-channel statistics the images were standardised with (undone for display).
        ncols: images per row.

    Returns:
        The figure.
    """
    if not (len(images) == len(targets) == len(preds)):
        raise ValueError(
            f"images, targets and preds must have the same length, got {len(images)}, {len(targets)}, {len(preds)}"
        )
    images = images.detach().float().cpu()
    if mean is not None and std is not None:
        images = images * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.45 * ncols, 1.75 * nrows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= len(images):
            ax.axis("off")
            continue
        truth, guess = int(targets[index]), int(preds[index])
        right = truth == guess
        ax.imshow(to_numpy_image(images[index]), interpolation="nearest")
        confidence = f" {percent(float(probs[index, guess]))}" if probs is not None else ""
        if right:
            title = f"✓ {class_names[guess]}{confidence}"
        else:
            title = f"✗ {class_names[guess]}{confidence}\n(es {class_names[truth]})"
        ax.set_title(title, fontsize=7, color=CORRECT if right else WRONG)
        for spine in ax.spines.values():
            spine.set_edgecolor(CORRECT if right else WRONG)
            spine.set_linewidth(2.5)
    accuracy = float((torch.as_tensor(targets) == torch.as_tensor(preds)).float().mean())
    fig.suptitle(f"{len(images)} imágenes de prueba: {percent(accuracy)} bien (verde ✓), mal en rojo ✗", fontsize=10)
    fig.tight_layout()
    return fig
