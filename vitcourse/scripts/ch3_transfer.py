"""Chapter 3's transfer study: the stand-in pretrained on Fashion-MNIST, adapted to MNIST digits.

    python -m vitcourse.scripts.ch3_transfer --seed 0     # every budget and mode, one seed
    python -m vitcourse.scripts.ch3_transfer --list

The offline stand-in for ``google/vit-base-patch16-224`` is the shipped ``vit_fashion_tiny``
(a small ViT trained on Fashion-MNIST) converted to Hugging Face. This script adapts it
to a task it never saw, MNIST's handwritten digits, with a few labelled images per class,
in the four ways chapter 3 compares (:data:`MODES`), at several label budgets
(:data:`BUDGETS`), through the same ``Trainer`` code path as the chapter and TP3
(:mod:`vitcourse.finetune`). Every run is tested on the same 1,000 test digits.

It writes ``vitcourse/results/ch3_transfer/seed<k>.json`` with its provenance; the chapter
loads the numbers and re-runs :data:`LIVE`, and ``tests/test_ch3_transfer.py`` checks
that the re-run reproduces the stored accuracy.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .. import results

__all__ = ["BUDGETS", "LIVE", "MODES", "STUDY", "TransferRun", "load_digits", "run", "run_seed"]

STUDY = "ch3_transfer"
MODEL_ID = "google/vit-base-patch16-224"

MODES: dict[str, str] = {
    "head": "cabeza nueva, sin entrenar",
    "probe": "sonda lineal",
    "full": "ajuste completo",
    "scratch": "desde cero",
}
"""How the model is adapted: not at all (the new head is random), only the head (linear
probe on frozen features), every weight, or the same architecture from random weights."""

BUDGETS: tuple[int, ...] = (20, 100, 500)
"""Labelled training digits (stratified: 2, 10, 50 per class)."""

LEARNING_RATES: dict[str, float] = {"probe": 1e-2, "full": 1e-3, "scratch": 1e-3}
"""Peak learning rate of each mode (the frozen backbone tolerates a larger one)."""

STEPS, BATCH_SIZE, TEST_SIZE, VALIDATION_SIZE = 100, 32, 1000, 200
"""Every trained run takes the same 100 optimiser steps of 32 images (fewer images: more
epochs), and is tested on the same 1,000 digits."""


@dataclass(frozen=True)
class TransferRun:
    """One adaptation: ``mode`` (a key of :data:`MODES`) with ``budget`` labelled digits."""

    mode: str
    budget: int
    seed: int = 0


LIVE = TransferRun("full", 100, 0)
"""The point the chapter trains again live."""


def load_digits(budget: int, seed: int, processor: Any):
    """MNIST as the stand-in sees it: ``budget`` training digits (stratified, chosen with
    ``seed``), 200 validation and the first :data:`TEST_SIZE` test digits, through ``processor``."""
    from ..finetune import load_image_dataset, processor_transform

    sizes = {"train": budget, "validation": VALIDATION_SIZE, "test": TEST_SIZE}
    data = load_image_dataset("mnist", sizes=sizes, seed=seed)
    return data.with_transform(processor_transform(processor)), data["train"].features["label"].names


def run(spec: TransferRun, profile: str = "smoke") -> dict[str, Any]:
    """Adapt the stand-in once and measure it on the test digits.

    Returns:
        ``{"mode", "budget", "seed", "accuracy", "precision", "recall", "f1", "trainable",
        "total", "seconds", "cpu_seconds", "epochs"}``.
    """
    from transformers import AutoModelForImageClassification

    from ..finetune import evaluate_classifier, finetune, freeze_backbone, load_for_finetuning, trainable_parameters
    from ..hub import load_processor

    if spec.mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {spec.mode!r}")
    torch.set_num_threads(1)
    labels = [str(digit) for digit in range(10)]
    model = load_for_finetuning(labels, MODEL_ID, profile=profile, seed=spec.seed, verbose=False)
    processor = load_processor(MODEL_ID, model=model, profile=profile, verbose=False)
    data, _ = load_digits(spec.budget, spec.seed, processor)
    if spec.mode == "probe":
        freeze_backbone(model)
    if spec.mode == "scratch":  # the same architecture and head, every weight re-initialised
        torch.manual_seed(spec.seed)
        model = AutoModelForImageClassification.from_config(model.config).train()
    trainable, total = trainable_parameters(model)
    start, cpu_start = time.perf_counter(), time.process_time()
    if spec.mode != "head":
        with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
            finetune(model, data["train"], None, output_dir=out, max_steps=STEPS, batch_size=BATCH_SIZE,
                     learning_rate=LEARNING_RATES[spec.mode], seed=spec.seed, verbose=False)  # fmt: skip
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    metrics = evaluate_classifier(model, data["test"])
    return {
        **asdict(spec),
        **{key: metrics[key] for key in ("accuracy", "precision", "recall", "f1")},
        "trainable": trainable,
        "total": total,
        "epochs": 0 if spec.mode == "head" else STEPS * BATCH_SIZE / spec.budget,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "stand_in": str(model.provenance) if hasattr(model, "provenance") else None,
    }


def run_seed(seed: int, root: str | None = None) -> dict[str, Any]:
    """Every budget and mode for one seed; writes ``seed<k>.json`` after each run."""
    command = f"python -m vitcourse.scripts.ch3_transfer --seed {seed}"
    data = {"provenance": results.provenance([seed], study=STUDY, command=command), "runs": []}
    start, cpu_start = time.perf_counter(), time.process_time()
    for budget in BUDGETS:
        for mode in MODES:
            row = run(TransferRun(mode, budget, seed))
            data["runs"].append(row)
            data["provenance"].update(wall_seconds=round(time.perf_counter() - start, 1),
                                      cpu_seconds=round(time.process_time() - cpu_start, 1))  # fmt: skip
            results.write(STUDY, f"seed{seed}", data, root)
            print(f"{mode:8s} {budget:5d} seed {seed}: accuracy {row['accuracy']:.4f} ({row['cpu_seconds']:.0f} s CPU)",
                  flush=True)  # fmt: skip
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitcourse.scripts.ch3_transfer", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=None, help="results folder (default: the package's)")
    parser.add_argument("--list", action="store_true", help="print the runs and exit")
    args = parser.parse_args(argv)
    if args.list:
        for budget in BUDGETS:
            print(f"{budget:5d} digits: " + ", ".join(MODES))
        return 0
    run_seed(args.seed, args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
