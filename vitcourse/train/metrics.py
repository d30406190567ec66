"""Classification metrics, written out in PyTorch (and checked against scikit-learn in the tests).

Everything starts from the confusion matrix ``M``: ``M[i, j]`` counts the images of
true class ``i`` predicted as ``j`` (rows: truth, columns: prediction, as in sklearn).

* accuracy = ``trace(M) / sum(M)``;
* precision of class ``j`` = ``M[j, j] / sum(M[:, j])`` (of what we called ``j``, how much was ``j``);
* recall of class ``i`` = ``M[i, i] / sum(M[i, :])`` (of the true ``i``, how much we found);
* F1 = harmonic mean of the two; *macro* averages give every class the same weight.

A class never predicted has precision 0 (and never present, recall 0), sklearn's
``zero_division=0``.

:func:`evaluate` and :func:`predict` run a model over a loader (or a tensor of images).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Predictions",
    "accuracy",
    "classification_metrics",
    "confusion_matrix",
    "evaluate",
    "logits_of",
    "precision_recall_f1",
    "predict",
]


def logits_of(outputs: Any) -> torch.Tensor:
    """The class logits inside a model's output.

    Accepts a tensor, a tuple/list whose first element is the logits (e.g. a DeiT in
    training mode returns ``(cls_logits, dist_logits)``), a dict with ``"logits"`` or an
    object with a ``.logits`` attribute (Hugging Face outputs).
    """
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, (tuple, list)) and outputs and isinstance(outputs[0], torch.Tensor):
        return outputs[0]
    if isinstance(outputs, dict) and "logits" in outputs:
        return outputs["logits"]
    if hasattr(outputs, "logits"):
        return outputs.logits
    raise TypeError(
        f"cannot find class logits in a model output of type {type(outputs).__name__}; return a (B, num_classes) "
        "tensor, a tuple starting with one, or an object with .logits"
    )


def confusion_matrix(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Count (true, predicted) pairs.

    Args:
        preds: ``(N,)`` predicted class indices.
        targets: ``(N,)`` true class indices.
        num_classes: ``C``.

    Returns:
        ``(C, C)`` int64, rows = true class, columns = predicted class.
    """
    preds, targets = preds.reshape(-1).long().cpu(), targets.reshape(-1).long().cpu()
    if preds.shape != targets.shape:
        raise ValueError(f"preds and targets must have the same length, got {preds.numel()} and {targets.numel()}")
    for name, values in (("preds", preds), ("targets", targets)):
        if values.numel() and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} must be class indices in [0, {num_classes}), got values from {int(values.min())} "
                f"to {int(values.max())}; check num_classes"
            )
    counts = torch.bincount(targets * num_classes + preds, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def accuracy(preds: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of ``preds`` equal to ``targets`` (both ``(N,)``; 0.0 when empty)."""
    if preds.numel() == 0:
        return 0.0
    return (preds.reshape(-1) == targets.reshape(-1)).float().mean().item()


def precision_recall_f1(confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-class precision, recall and F1 from a confusion matrix.

    Args:
        confusion: ``(C, C)`` counts, rows true, columns predicted.

    Returns:
        ``{"precision", "recall", "f1", "support"}``, each ``(C,)`` (float64, support int64).
    """
    confusion = confusion.double()
    hits = confusion.diagonal()
    predicted, actual = confusion.sum(dim=0), confusion.sum(dim=1)
    precision = torch.where(predicted > 0, hits / predicted.clamp(min=1), torch.zeros_like(hits))
    recall = torch.where(actual > 0, hits / actual.clamp(min=1), torch.zeros_like(hits))
    both = precision + recall
    f1 = torch.where(both > 0, 2 * precision * recall / both.clamp(min=1e-12), torch.zeros_like(hits))
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual.long()}


def classification_metrics(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1 and the confusion matrix.

    Args:
        preds, targets: ``(N,)`` class indices.
        num_classes: ``C``.

    Returns:
        ``{"accuracy", "precision", "recall", "f1"}`` as floats (macro averages over the
        ``C`` classes) plus ``"confusion"``, the ``(C, C)`` matrix, and ``"per_class"``,
        the dict of :func:`precision_recall_f1`.
    """
    confusion = confusion_matrix(preds, targets, num_classes)
    per_class = precision_recall_f1(confusion)
    return {
        "accuracy": accuracy(preds, targets),
        "precision": per_class["precision"].mean().item(),
        "recall": per_class["recall"].mean().item(),
        "f1": per_class["f1"].mean().item(),
        "confusion": confusion,
        "per_class": per_class,
    }


class Predictions(NamedTuple):
    """What :func:`predict` returns: ``labels`` ``(N,)``, ``probs`` ``(N, C)``, ``targets`` ``(N,)`` or None."""

    labels: torch.Tensor
    probs: torch.Tensor
    targets: torch.Tensor | None


def _default_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _batches(data: torch.Tensor | Iterable, batch_size: int) -> Iterable[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield ``(images, targets or None)`` from a loader of pairs, a loader of images, or a tensor."""
    if isinstance(data, torch.Tensor):
        for start in range(0, len(data), batch_size):
            yield data[start : start + batch_size], None
        return
    for batch in data:
        if isinstance(batch, (tuple, list)):
            yield batch[0], (batch[1] if len(batch) > 1 else None)
        else:
            yield batch, None


@torch.no_grad()
def predict(
    model: nn.Module,
    data: torch.Tensor | Iterable,
    device: str | torch.device | None = None,
    batch_size: int = 256,
) -> Predictions:
    """Class predictions and probabilities of a model in eval mode.

    Args:
        model: returns logits (see :func:`logits_of`).
        data: a ``(N, C, H, W)`` tensor, or a loader yielding ``(images, targets)`` or images.
        device: where to run (default: where the model is).
        batch_size: batch size when ``data`` is a tensor.

    Returns:
        :class:`Predictions` with ``labels`` ``(N,)``, ``probs`` ``(N, C)`` (softmax) and
        ``targets`` ``(N,)`` if the loader gave them. All on the CPU.
    """
    device = torch.device(device) if device is not None else _default_device(model)
    was_training = model.training
    model.eval()
    probs, targets = [], []
    try:
        for images, target in _batches(data, batch_size):
            logits = logits_of(model(images.to(device)))
            probs.append(F.softmax(logits.float(), dim=-1).cpu())
            if target is not None:
                targets.append(torch.as_tensor(target).cpu())
    finally:
        model.train(was_training)
    if not probs:
        raise ValueError("predict got no data: the tensor or loader is empty")
    all_probs = torch.cat(probs)
    return Predictions(all_probs.argmax(dim=-1), all_probs, torch.cat(targets) if targets else None)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    device: str | torch.device | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Loss and classification metrics of a model over a loader of ``(images, labels)``.

    Args:
        model: returns logits (see :func:`logits_of`); run in eval mode, then restored.
        loader: yields ``(images, labels)`` with integer labels.
        device: where to run (default: where the model is).
        loss_fn: ``loss_fn(logits, labels)`` averaged over each batch; default cross-entropy.
        num_classes: ``C`` (default: the width of the logits).

    Returns:
        ``{"loss", "accuracy", "precision", "recall", "f1", "confusion", "per_class", "num_samples"}``;
        the loss is averaged over samples.
    """
    device = torch.device(device) if device is not None else _default_device(model)
    loss_fn = loss_fn or F.cross_entropy
    was_training = model.training
    model.eval()
    total_loss, preds, targets = 0.0, [], []
    try:
        for images, labels in loader:
            labels = torch.as_tensor(labels)
            logits = logits_of(model(images.to(device))).float()
            total_loss += loss_fn(logits, labels.to(device)).item() * len(labels)
            preds.append(logits.argmax(dim=-1).cpu())
            targets.append(labels.cpu())
    finally:
        model.train(was_training)
    if not preds:
        raise ValueError("evaluate got an empty loader: there is nothing to measure")
    preds_all, targets_all = torch.cat(preds), torch.cat(targets)
    num_classes = num_classes or logits.shape[-1]
    metrics = classification_metrics(preds_all, targets_all, num_classes)
    return {"loss": total_loss / len(targets_all), **metrics, "num_samples": len(targets_all)}
