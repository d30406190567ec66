"""The training loop: :func:`fit` trains a classifier the way ViTs are trained.

The recipe, one line each in the loop below:

* **AdamW** with decoupled weight decay, not applied to biases, norms and tokens;
* a **linear warm-up then cosine** learning-rate schedule, stepped every batch;
* **label smoothing** (or any loss you pass, e.g. a distillation loss);
* **gradient clipping** by global norm;
* **mixed precision** (bfloat16/float16 autocast) on a GPU only, so CPU runs are exact;
* optional batch-level augmentation (MixUp/CutMix) through ``batch_transform``;
* **validation** every epoch, **early stopping** on a monitored metric, and the best
  epoch's weights restored at the end;
* a :class:`History` of per-epoch numbers, a log file with levels, and optional MLflow
  tracking.

The same call runs on a laptop CPU and on a Colab GPU; with the same ``seed`` the same
history comes out (on the same device).
"""

from __future__ import annotations

import inspect
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..runtime import seed_everything
from .checkpoint import save_checkpoint
from .logs import log_to_file
from .metrics import evaluate, logits_of
from .schedule import warmup_cosine_scheduler

__all__ = ["History", "fit", "param_groups", "resolve_device"]

logger = logging.getLogger(__name__)

LossFn = Callable[..., torch.Tensor]
BatchTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class History:
    """What happened during :func:`fit`, one row per epoch.

    Each row has ``epoch`` (from 1), ``train_loss``, ``train_accuracy``, ``lr`` (of the
    epoch's last step), ``seconds`` and, with a validation loader, ``val_loss``,
    ``val_accuracy``, ``val_precision``, ``val_recall``, ``val_f1`` (macro).

    Attributes:
        rows: the per-epoch dicts.
        monitor: the metric early stopping and best-epoch selection watched.
        best_epoch: epoch whose weights the model holds at the end (None without validation).
        stopped_early: True if patience ran out before ``epochs``.
    """

    rows: list[dict[str, float]] = field(default_factory=list)
    monitor: str = "val_loss"
    best_epoch: int | None = None
    stopped_early: bool = False

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: str) -> list[float]:
        """One column, e.g. ``history["val_accuracy"]``."""
        if self.rows and key not in self.rows[0]:
            raise KeyError(f"no column {key!r} in the history; columns: {list(self.rows[0])}")
        return [row[key] for row in self.rows]

    @property
    def best(self) -> dict[str, float] | None:
        """The row of :attr:`best_epoch`."""
        return None if self.best_epoch is None else self.rows[self.best_epoch - 1]

    def to_frame(self):
        """The rows as a ``pandas.DataFrame`` indexed by epoch."""
        import pandas as pd

        return pd.DataFrame(self.rows).set_index("epoch")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, ready for ``json.dump``."""
        return asdict(self)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` → CUDA when available, else CPU; a string or device is taken as is."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split parameters into decayed and not decayed, as ViT recipes do.

    Weight decay pulls weights toward zero; that regularises matrices but only hurts
    biases, LayerNorm gains and learned tokens/positions. Parameters with at most one
    dimension, and those a model lists in ``no_weight_decay()`` (the timm convention,
    e.g. ``{"pos_embed", "cls_token"}``), get none.

    Returns:
        Two parameter groups for ``torch.optim.AdamW``.
    """
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if parameter.ndim <= 1 or name in skip or name.split(".")[-1] in skip:
            no_decay.append(parameter)
        else:
            decay.append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _check_loader(loader: Iterable, name: str) -> int:
    try:
        length = len(loader)  # type: ignore[arg-type]
    except TypeError as error:
        raise TypeError(f"{name} must have a length (a DataLoader over a map-style Dataset)") from error
    if length == 0:
        raise ValueError(
            f"{name} yields no batches: its dataset is empty, or drop_last=True with fewer samples than "
            "batch_size; check the dataset size and the DataLoader arguments"
        )
    return length


def _check_labels(labels: torch.Tensor, num_outputs: int, epoch: int, step: int) -> None:
    """Integer labels must index the model's outputs; say so before cross-entropy fails obscurely."""
    if labels.is_floating_point():
        raise TypeError(
            f"labels must be integer class indices, got {labels.dtype}; soft targets come from batch_transform"
        )
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_outputs:
        raise ValueError(
            f"labels must be in [0, {num_outputs}) for a model with {num_outputs} outputs, got labels from "
            f"{low} to {high} (epoch {epoch}, batch {step}); build the model with num_classes={high + 1} "
            f"or fix the dataset's labels"
        )


def _wants_images(loss_fn: LossFn) -> bool:
    """A loss with a third parameter receives the input images (a distillation loss asks its teacher)."""
    target = loss_fn.forward if isinstance(loss_fn, nn.Module) else loss_fn  # a module's __call__ takes *args
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def _is_better(value: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return value < best if "loss" in monitor else value > best


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    warmup: float = 1.0,
    min_lr_ratio: float = 0.0,
    label_smoothing: float = 0.0,
    grad_clip: float | None = 1.0,
    amp: bool = True,
    device: str | torch.device | None = None,
    patience: int | None = None,
    monitor: str = "val_loss",
    restore_best: bool = True,
    loss_fn: LossFn | None = None,
    batch_transform: BatchTransform | None = None,
    seed: int | None = 0,
    log_file: str | Path | None = None,
    log_level: str = "INFO",
    mlflow: bool | str | Path = False,
    experiment: str = "vitcourse",
    run_name: str | None = None,
    params: dict[str, Any] | None = None,
    checkpoint: str | Path | None = None,
    quiet: bool = False,
) -> History:
    """Train a classifier and return its :class:`History`.

    Args:
        model: maps ``(B, C, H, W)`` images to logits (or anything :func:`~vitcourse.train.metrics.logits_of`
            understands).
        train_loader: yields ``(images, labels)``; labels are class indices.
        val_loader: same, evaluated after every epoch (needed for early stopping and best-epoch restore).
        epochs: passes over ``train_loader``.
        lr: peak learning rate.
        weight_decay: AdamW decay of the matrices (see :func:`param_groups`).
        warmup: warm-up length in epochs (fractions allowed).
        min_lr_ratio: the cosine's floor as a fraction of ``lr``.
        label_smoothing: for the default cross-entropy loss.
        grad_clip: maximum global gradient norm; ``None`` turns clipping off.
        amp: mixed precision on CUDA (bfloat16 if supported, else float16 with loss scaling);
            ignored on the CPU.
        device: ``None`` picks CUDA when available; the model is moved there.
        patience: stop after this many epochs without improvement of ``monitor``.
        monitor: ``"val_loss"`` (lower is better) or another row key such as
            ``"val_accuracy"`` (higher is better).
        restore_best: load the best epoch's weights at the end.
        loss_fn: replaces cross-entropy: ``loss_fn(outputs, targets)`` or, if it takes a
            third argument, ``loss_fn(outputs, targets, images)`` (distillation); ``outputs``
            is the model's raw output.
        batch_transform: ``(images, labels) -> (images, targets)`` on each training batch,
            e.g. ``torchvision.transforms.v2.MixUp``/``CutMix`` (soft targets are fine).
        seed: seeds Python, NumPy and PyTorch first (shuffling, dropout, MixUp); ``None`` doesn't.
        log_file: append INFO (``log_level``) records of the run to this file.
        log_level: ``"DEBUG"`` also logs every batch.
        mlflow: ``True`` tracks to ``./mlruns``, a folder or URI tracks there, ``False`` doesn't.
        experiment, run_name: MLflow experiment and run names.
        params: extra parameters to record (model config, data set...).
        checkpoint: save the final (best) weights here as safetensors + JSON sidecar.
        quiet: no progress bars.

    Returns:
        The :class:`History`; the model holds the best epoch's weights (or the last ones
        without validation or with ``restore_best=False``).
    """
    steps_per_epoch = _check_loader(train_loader, "train_loader")
    if val_loader is not None:
        _check_loader(val_loader, "val_loader")
    elif patience is not None:
        raise ValueError("patience needs a val_loader: early stopping watches a validation metric")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    device = resolve_device(device)
    if seed is not None:
        seed_everything(seed)
    model.to(device)

    total_steps = epochs * steps_per_epoch
    warmup_steps = min(round(warmup * steps_per_epoch), total_steps)
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr)
    scheduler = warmup_cosine_scheduler(optimizer, total_steps, warmup_steps, min_lr_ratio)
    use_amp = amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    def criterion(outputs: Any, targets: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        if loss_fn is None:
            return F.cross_entropy(logits_of(outputs), targets, label_smoothing=label_smoothing)
        return loss_fn(outputs, targets, images) if pass_images else loss_fn(outputs, targets)

    pass_images = loss_fn is not None and _wants_images(loss_fn)
    recipe = {
        "epochs": epochs,
        "lr": lr,
        "weight_decay": weight_decay,
        "warmup": warmup,
        "min_lr_ratio": min_lr_ratio,
        "label_smoothing": label_smoothing,
        "grad_clip": grad_clip,
        "amp": use_amp,
        "device": str(device),
        "patience": patience,
        "monitor": monitor,
        "seed": seed,
        "batch_size": getattr(train_loader, "batch_size", None),
        "steps_per_epoch": steps_per_epoch,
        "loss_fn": "cross_entropy" if loss_fn is None else getattr(loss_fn, "__name__", type(loss_fn).__name__),
        "batch_transform": None if batch_transform is None else type(batch_transform).__name__,
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }

    def train_one_epoch(epoch: int) -> dict[str, float]:
        model.train()
        total_loss, correct, seen, lr_used = 0.0, 0, 0, lr
        for step, (images, labels) in enumerate(tqdm(train_loader, desc=f"epoch {epoch}", leave=False, disable=quiet)):
            labels = torch.as_tensor(labels)
            images, labels = images.to(device), labels.to(device)
            targets = labels
            if batch_transform is not None:
                images, targets = batch_transform(images, labels)  # e.g. MixUp: soft (B, num_classes) targets
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                outputs = model(images)
                logits = logits_of(outputs)
                if epoch == 1:  # every label passes through once; later epochs see the same ones
                    _check_labels(labels.cpu(), logits.shape[-1], epoch, step)
                loss = criterion(outputs, targets, images)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the loss became {loss.item()} at epoch {epoch}, batch {step} (lr {lr_used:.2e}); "
                    "lower lr, keep grad_clip on, or check the inputs for NaNs"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if grad_clip is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            lr_used = optimizer.param_groups[0]["lr"]
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()

            hard = targets.argmax(dim=-1) if targets.is_floating_point() else targets
            total_loss += loss.item() * len(images)
            correct += (logits.argmax(dim=-1) == hard).sum().item()
            seen += len(images)
            logger.debug("epoch %d batch %d: loss %.4f, lr %.3g", epoch, step, loss.item(), lr_used)
        return {"epoch": epoch, "train_loss": total_loss / seen, "train_accuracy": correct / seen, "lr": lr_used}

    history = History(monitor=monitor)
    best_value, best_state, bad_epochs = None, None, 0
    with log_to_file(log_file, log_level):
        logger.info("fit %s on %s: %s", type(model).__name__, device, recipe)
        tracker = None
        if mlflow:
            from .tracking import MlflowTracker

            tracker = MlflowTracker(mlflow, experiment, run_name, {**recipe, **(params or {})})
        try:
            epoch_bar = tqdm(range(1, epochs + 1), desc="epochs", disable=quiet)
            for epoch in epoch_bar:
                start = time.perf_counter()
                row = train_one_epoch(epoch)
                if val_loader is not None:
                    val = evaluate(model, val_loader, device)
                    row.update({f"val_{k}": val[k] for k in ("loss", "accuracy", "precision", "recall", "f1")})
                row["seconds"] = time.perf_counter() - start
                history.rows.append(row)
                logger.info("epoch %d: %s", epoch, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
                epoch_bar.set_postfix(
                    {k: f"{row[k]:.3f}" for k in ("train_loss", "val_loss", "val_accuracy") if k in row}
                )
                if tracker is not None:
                    tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
                if val_loader is None:
                    continue

                if monitor not in row:
                    raise KeyError(f"monitor={monitor!r} is not a history column; choose one of {list(row)}")
                if _is_better(row[monitor], best_value, monitor):
                    best_value, bad_epochs, history.best_epoch = row[monitor], 0, epoch
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                else:
                    bad_epochs += 1
                    if patience is not None and bad_epochs >= patience:
                        history.stopped_early = True
                        logger.info("early stop after epoch %d: no better %s for %d epochs", epoch, monitor, patience)
                        break

            if restore_best and best_state is not None:
                model.load_state_dict(best_state)
                logger.info("restored the weights of epoch %d (%s = %.4g)", history.best_epoch, monitor, best_value)
            if checkpoint is not None:
                save_checkpoint(
                    checkpoint, model, config=params, metrics=history.best or history.rows[-1], recipe=recipe
                )
                logger.info("saved the weights to %s", checkpoint)
            if tracker is not None:
                _log_artifacts(tracker, history, log_file, checkpoint)
                tracker.finish("FINISHED")
        except BaseException:
            logger.exception("training failed")
            if tracker is not None:
                tracker.finish("FAILED")
            raise
    return history


def _log_artifacts(tracker: Any, history: History, log_file: str | Path | None, checkpoint: str | Path | None) -> None:
    """History as JSON, the log file and the checkpoint, into the MLflow run."""
    if history.best is not None:
        tracker.log_metrics({f"best_{k}": v for k, v in history.best.items() if k != "epoch"}, step=history.best_epoch)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.json"
        path.write_text(json.dumps(history.to_dict(), indent=2))
        tracker.log_artifact(path)
    for path in (log_file, checkpoint):
        if path is not None and Path(path).exists():
            tracker.log_artifact(path)
    if checkpoint is not None and Path(checkpoint).with_suffix(".json").exists():
        tracker.log_artifact(Path(checkpoint).with_suffix(".json"))
