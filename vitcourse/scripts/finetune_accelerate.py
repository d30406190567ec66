"""Fine-tune a pretrained ViT with Hugging Face Accelerate: one script for a CPU, one GPU or several.

Run it the same way everywhere; only the launcher's flags change::

    python -m vitcourse.scripts.finetune_accelerate --profile smoke        # this machine: CPU, offline
    accelerate launch -m vitcourse.scripts.finetune_accelerate --profile full --dataset beans   # one GPU
    accelerate launch --multi_gpu --num_processes 4 -m vitcourse.scripts.finetune_accelerate --profile full
    ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 -m vitcourse.scripts.finetune_accelerate  # 2 CPU processes

(``accelerate launch --cpu`` starts a single process; several CPU processes on one machine
need ``torchrun`` as above, or ``accelerate config`` set to multi-CPU.) With several
processes the effective batch grows with them: scale ``--lr`` or shrink ``--batch-size``.

The training loop is plain PyTorch. Accelerate changes five lines of it:

* ``Accelerator()`` reads what the launcher set up (device, number of processes, mixed
  precision) instead of the script deciding;
* ``accelerator.prepare(...)`` moves the model to its device, wraps it for distributed
  data parallelism when there are several processes, and gives each process its own
  shard of every data loader;
* ``accelerator.backward(loss)`` replaces ``loss.backward()`` (it scales the loss under
  fp16 and lets gradient accumulation skip the synchronisation it doesn't need);
* ``accelerator.gather_for_metrics(...)`` collects every process's predictions, dropping
  the samples repeated to even out the last batch, so metrics count each image once;
* ``accelerator.is_main_process`` guards what only one process should do (print, save).

The data, the model and the metrics are those of :mod:`vitcourse.finetune` (the recipe
``Trainer`` runs in Chapter 3), so this script and ``Trainer`` train the same thing.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["FinetuneConfig", "build", "evaluate", "main", "parse_args", "train_one_epoch"]

MODES = ("full", "probe")


@dataclass
class FinetuneConfig:
    """Everything a run depends on (the command line's options).

    Attributes:
        model: a Hub image classifier (:data:`vitcourse.hub.HUB_MODELS`).
        dataset: a :mod:`vitcourse.finetune` data set (``shape-colors``, ``digits``,
            ``photos``, ``shapes`` offline; ``beans``, ``cifar10`` in ``full``).
        profile: ``"auto"``, ``"smoke"`` (offline stand-ins) or ``"full"``.
        mode: ``"full"`` (every weight trains) or ``"probe"`` (only the new head).
        epochs: passes over the training split.
        batch_size: images per step **per process** (the effective batch is
            ``batch_size × processes × grad_accum``).
        lr: peak learning rate (linear warm-up, then linear decay to zero, as ``Trainer``).
        weight_decay: AdamW's decoupled weight decay.
        warmup: fraction of the steps spent warming up.
        grad_accum: optimiser step every this many batches.
        train_size, val_size, test_size: images per split (0: the data set's default).
        seed: seed of the new head, the data order and dropout.
        output_dir: where ``results.json`` goes (nothing is written if empty).
    """

    model: str = "google/vit-base-patch16-224"
    dataset: str = "shape-colors"
    profile: str = "auto"
    mode: str = "full"
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: float = 0.1
    grad_accum: int = 1
    train_size: int = 0
    val_size: int = 0
    test_size: int = 0
    seed: int = 0
    output_dir: str = ""


def parse_args(argv: Sequence[str] | None = None) -> FinetuneConfig:
    """The command line as a :class:`FinetuneConfig` (``--help`` lists the options)."""
    defaults = FinetuneConfig()
    parser = argparse.ArgumentParser(
        prog="python -m vitcourse.scripts.finetune_accelerate",
        description="Fine-tune a pretrained ViT with Accelerate (CPU, one GPU or several with accelerate launch).",
    )
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        kwargs: dict[str, Any] = {"default": value, "type": type(value)}
        if name == "mode":
            kwargs["choices"] = MODES
        if name == "profile":
            kwargs["choices"] = ("auto", "smoke", "full")
        parser.add_argument(flag, dest=name, **kwargs)
    config = FinetuneConfig(**vars(parser.parse_args(argv)))
    for name in ("epochs", "batch_size", "grad_accum"):
        if getattr(config, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(config, name)}")
    return config


def build(config: FinetuneConfig, accelerator) -> tuple[torch.nn.Module, dict[str, Any], list[str]]:
    """The model with its new head and the data loaders, as :mod:`vitcourse.finetune` makes them.

    Args:
        config: the run's settings.
        accelerator: the ``accelerate.Accelerator`` (the main process builds first, so that
            a download happens once).

    Returns:
        ``(model, loaders, labels)``: ``loaders`` has ``train``, ``validation`` and
        ``test`` data loaders of ``{"pixel_values": (B, 3, H, W), "labels": (B,)}``
        (not prepared yet); ``labels`` are the class names.
    """
    from torch.utils.data import DataLoader

    from ..finetune import collate, freeze_backbone, load_for_finetuning, load_image_dataset, processor_transform
    from ..hub import load_processor

    sizes = {split: n for split, n in (("train", config.train_size), ("validation", config.val_size),
                                       ("test", config.test_size)) if n > 0}  # fmt: skip
    verbose = accelerator.is_main_process
    with accelerator.main_process_first():
        data = load_image_dataset(config.dataset, profile=config.profile, sizes=sizes or None, seed=config.seed)
        labels = data["train"].features["label"].names
        model = load_for_finetuning(labels, config.model, profile=config.profile, seed=config.seed, verbose=verbose)
        processor = load_processor(config.model, model=model, profile=config.profile, verbose=verbose)
    if config.mode == "probe":
        freeze_backbone(model)
    data = data.with_transform(processor_transform(processor))
    generator = torch.Generator().manual_seed(config.seed)  # the same data order on every run
    loaders = {
        "train": DataLoader(data["train"], config.batch_size, shuffle=True, collate_fn=collate, generator=generator),
        "validation": DataLoader(data["validation"], 2 * config.batch_size, collate_fn=collate),
        "test": DataLoader(data["test"], 2 * config.batch_size, collate_fn=collate),
    }
    return model, loaders, labels


def train_one_epoch(model, loader, optimizer, scheduler, accelerator) -> float:
    """One pass over ``loader`` (prepared); returns the mean training loss of this
    process.
    """
    model.train()
    total, batches = 0.0, 0
    for batch in loader:
        # syncs gradients only on the steps that update
        with accelerator.accumulate(model):
            logits = model(pixel_values=batch["pixel_values"]).logits  # (B, C)
            loss = F.cross_entropy(logits, batch["labels"])
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        total, batches = total + loss.item(), batches + 1
    return total / max(batches, 1)


@torch.no_grad()
def evaluate(model, loader, accelerator, num_classes: int) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1 and the confusion matrix over every process's
    share of ``loader``.

    Returns:
        :func:`vitcourse.train.classification_metrics`'s dict (the confusion matrix as a
        list of lists) plus ``num_samples``: each image counted once, however many
        processes.
    """
    from ..train.metrics import classification_metrics

    model.eval()
    preds, targets = [], []
    for batch in loader:
        logits = model(pixel_values=batch["pixel_values"]).logits  # (B, C)
        batch_preds, batch_targets = accelerator.gather_for_metrics(
            (logits.argmax(-1), batch["labels"])
        )
        preds.append(batch_preds.cpu())
        targets.append(batch_targets.cpu())
    preds_all, targets_all = torch.cat(preds), torch.cat(targets)
    metrics = classification_metrics(preds_all, targets_all, num_classes)
    return {
        **{key: metrics[key] for key in ("accuracy", "precision", "recall", "f1")},
        "confusion": metrics["confusion"].tolist(),
        "num_samples": len(targets_all),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the command line, fine-tune, evaluate before and after; returns (and saves) the results.

    Returns:
        ``{"config", "labels", "processes", "device", "trainable", "total", "before", "after",
        "history", "seconds"}``; ``before``/``after`` are :func:`evaluate`'s test metrics of the
        model with its new, untrained head and of the fine-tuned model.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    from ..finetune import trainable_parameters

    config = parse_args(argv)
    accelerator = Accelerator(gradient_accumulation_steps=config.grad_accum)
    set_seed(config.seed)
    say = accelerator.print  # prints on the main process only

    model, loaders, labels = build(config, accelerator)
    trainable, total = trainable_parameters(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * math.ceil(len(loaders["train"]) / (accelerator.num_processes * config.grad_accum))
    # prepare() steps a prepared scheduler once per process, so it counts num_processes times the updates
    n = accelerator.num_processes
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=int(config.warmup * steps) * n,
                              num_training_steps=steps * n)  # fmt: skip
    model, optimizer, scheduler, train, validation, test = accelerator.prepare(
        model, optimizer, scheduler, loaders["train"], loaders["validation"], loaders["test"]
    )
    say(f"{config.dataset}: {len(labels)} classes | {accelerator.num_processes} process(es) on {accelerator.device} "
        f"| mode={config.mode}: {trainable:,} of {total:,} parameters train")  # fmt: skip

    before = evaluate(model, test, accelerator, len(labels))
    history, start = [], time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        loss = train_one_epoch(model, train, optimizer, scheduler, accelerator)
        mean_loss = accelerator.reduce(torch.tensor(loss, device=accelerator.device), reduction="mean").item()
        val = evaluate(model, validation, accelerator, len(labels))
        history.append({"epoch": epoch, "train_loss": mean_loss, "val_accuracy": val["accuracy"], "val_f1": val["f1"]})
        say(f"epoch {epoch}: train loss {mean_loss:.3f} | val accuracy {val['accuracy']:.3f} | val F1 {val['f1']:.3f}")
    seconds = time.perf_counter() - start
    after = evaluate(model, test, accelerator, len(labels))
    say(f"test accuracy: {before['accuracy']:.3f} with the new head untrained -> {after['accuracy']:.3f} "
        f"fine-tuned ({seconds:.1f} s)")  # fmt: skip

    results = {
        "config": asdict(config), "labels": list(labels), "processes": accelerator.num_processes,
        "device": str(accelerator.device), "trainable": trainable, "total": total,
        "before": before, "after": after, "history": history, "seconds": seconds,
    }  # fmt: skip
    if config.output_dir and accelerator.is_main_process:
        out = Path(config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    accelerator.wait_for_everyone()
    return results


if __name__ == "__main__":
    main()
