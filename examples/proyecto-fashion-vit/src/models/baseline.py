"""``make baseline``: what a linear model on the raw pixels reaches on the same images.

A number means little without a reference. This one is a multinomial logistic
regression (scikit-learn) on the 784 normalised pixels, trained on the same training
images as the ViT and measured on the same test set, with the same bootstrap interval.
Added by the group to the template's pipeline; ``reports/baseline.json``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..command import run
from ..features.build_features import load_split
from ..provenance import provenance
from .predict_model import bootstrap_interval

logger = logging.getLogger(__name__)


def baseline(config: dict[str, Any]) -> dict[str, Any]:
    """Fit, choose C on validation, measure on test; ``reports/baseline.json``."""
    from sklearn.linear_model import LogisticRegression

    train, val, test = (load_split(config, split) for split in ("train", "val", "test"))
    start = time.perf_counter()
    fitted = {}
    for strength in (0.01, 0.1, 1.0):  # the regularisation, chosen on validation
        model = LogisticRegression(max_iter=300, C=strength)
        model.fit(train.inputs.flatten(1).numpy(), train.labels.numpy())
        score = model.score(val.inputs.flatten(1).numpy(), val.labels.numpy())
        fitted[strength] = (score, model)
        logger.info("C=%g: validation accuracy %.4f", strength, score)
    seconds = time.perf_counter() - start
    strength, (val_accuracy, model) = max(fitted.items(), key=lambda item: item[1][0])
    predicted = torch.from_numpy(model.predict(test.inputs.flatten(1).numpy()))
    correct = predicted == test.labels
    low, high = bootstrap_interval(correct, seed=config["seed"])
    result = {
        "model": f"logistic regression on the pixels (C={strength:g})",
        "train_images": len(train),
        "val_accuracy": val_accuracy,
        "accuracy": correct.float().mean().item(),
        "accuracy_ci95": [low, high],
        "training_seconds": seconds,  # the three fits
        "provenance": provenance(),
    }
    path = Path(config["paths"]["reports"]) / "baseline.json"
    path.write_text(json.dumps(result, indent=2))
    logger.info("baseline test accuracy %.4f (%.1f s)", result["accuracy"], seconds)
    return result


def main(argv: list[str] | None = None) -> int:
    return run("baseline", baseline, argv)


if __name__ == "__main__":
    sys.exit(main())
