"""``make evaluate``: the saved model on the test set, into ``reports/metrics.json``.

The metrics are chosen for a balanced, 10-class classification whose use would be
sorting or searching images:

* accuracy with a 95 % bootstrap interval (how much the number would move with another
  test set of the same size), and macro precision, recall and F1 (every class counts
  the same);
* per-class precision, recall and F1, and the confusion matrix: where the errors are;
* top-2 accuracy: how often the right class is the runner-up when it is not the first;
* expected calibration error (ECE): whether a 90 % confidence is right 90 % of the time,
  which decides whether the scores can be used as thresholds;
* the deletion check of the attention maps (:func:`.attention.deletion_check`).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..command import run
from ..features.build_features import load_split, mean_std
from ..provenance import provenance
from . import tracking
from .attention import deletion_check
from .train_model import load_trained

logger = logging.getLogger(__name__)


def bootstrap_interval(
    correct: torch.Tensor, samples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """2.5 and 97.5 percentiles of the accuracy over resampled test sets."""
    generator = torch.Generator().manual_seed(seed)
    n = len(correct)
    picks = torch.randint(n, (samples, n), generator=generator)
    accuracies = correct.float()[picks].mean(dim=1)
    low, high = torch.quantile(accuracies, torch.tensor([0.025, 0.975])).tolist()
    return low, high


def calibration_error(
    probs: torch.Tensor, targets: torch.Tensor, bins: int = 15
) -> float:
    """Expected calibration error: |accuracy − confidence| per bin, weighted by size."""
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == targets).float()
    edges = torch.linspace(0, 1, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.float().mean().item() * abs(
                correct[inside].mean().item() - confidence[inside].mean().item()
            )
    return error


def training_seconds(config: dict[str, Any]) -> float | None:
    """How long the saved model trained (its history's epochs), if known."""
    history = Path(config["paths"]["models"]) / "history.json"
    if not history.exists():
        return None
    return sum(row["seconds"] for row in json.loads(history.read_text())["rows"])


def evaluate_model(config: dict[str, Any]) -> dict[str, Any]:
    """Every test metric, into ``reports/metrics.json`` and the MLflow run."""
    from vitcourse.train import classification_metrics, predict

    model = load_trained(config)
    test = load_split(config, "test")
    predictions = predict(model, DataLoader(test, batch_size=256))
    probs, targets = predictions.probs, predictions.targets  # (N, K), (N,)
    metrics = classification_metrics(predictions.labels, targets, len(test.classes))
    low, high = bootstrap_interval(predictions.labels == targets, seed=config["seed"])
    top2 = (probs.topk(2, dim=1).indices == targets[:, None]).any(dim=1)
    sample = min(len(test), config["evaluate"]["deletion_images"])
    mean, std = mean_std(config["data"]["dataset"])
    deletion = deletion_check(
        model,
        test.inputs[:sample],
        test.labels[:sample],
        config["evaluate"]["deletion_fraction"],
        fill=-mean / std,  # a hidden patch becomes background (black)
    )
    per_class = metrics["per_class"]
    report = {
        "num_test_images": len(targets),
        "accuracy": metrics["accuracy"],
        "accuracy_ci95": [low, high],
        "precision_macro": metrics["precision"],
        "recall_macro": metrics["recall"],
        "f1_macro": metrics["f1"],
        "top2_accuracy": top2.float().mean().item(),
        "calibration_error": calibration_error(probs, targets),
        "mean_confidence": probs.max(dim=1).values.mean().item(),
        "per_class": {
            name: {k: float(per_class[k][i]) for k in ("precision", "recall", "f1")}
            | {"support": int(per_class["support"][i])}
            for i, name in enumerate(test.classes)
        },
        "confusion": metrics["confusion"].tolist(),
        "classes": test.classes,
        "deletion": deletion,
        "profile": config["profile"],
        "training_seconds": training_seconds(config),
        "provenance": provenance(),
    }
    reports = Path(config["paths"]["reports"])
    reports.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    (reports / "metrics.json").write_text(text, encoding="utf-8")
    scalars = ("accuracy", "precision_macro", "recall_macro", "f1_macro")
    scalars += ("top2_accuracy", "calibration_error")
    tracking.log_metrics(config, {f"test_{k}": report[k] for k in scalars})
    tracking.log_artifacts(config, [reports / "metrics.json"], "reports")
    logger.info(
        "test accuracy %.4f (95 %% CI %.4f-%.4f), macro F1 %.4f",
        report["accuracy"],
        low,
        high,
        report["f1_macro"],
    )
    return report


def main(argv: list[str] | None = None) -> int:
    return run("evaluate", evaluate_model, argv)


if __name__ == "__main__":
    sys.exit(main())
