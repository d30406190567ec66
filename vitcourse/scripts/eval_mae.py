"""What MAE pre-training is worth with few labels: linear probes and fine-tuning vs scratch.

    python -m vitcourse.scripts.eval_mae            # 3 seeds (about 20 CPU minutes)
    python -m vitcourse.scripts.eval_mae --seeds 1  # a quick look

With ``labels`` labelled Fashion-MNIST training images (a stratified subset drawn with
each seed) and the official 10,000 test images:

* **linear probe**: logistic regression on frozen features, of the pre-trained MAE
  encoder (``mae_fashion``), of the same encoder with random weights, and of the raw
  pixels (a reference every feature should beat);
* **fine-tuning vs scratch**: the same ViT trained end to end on the labelled images,
  once starting from the MAE encoder (:meth:`~vitcourse.models.MAE.to_classifier`) and
  once from random weights, with the same recipe and seed.

Every number is the mean and the standard deviation over the seeds; the per-seed
values are kept. Results: ``vitcourse/results/mae_fashion.json``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader, TensorDataset

from .. import checkpoints
from ..data import FashionMNIST
from ..models import MAE
from ..train import evaluate, fit
from .provenance import write_results

__all__ = ["features_of", "linear_probe", "main"]

logger = logging.getLogger(__name__)


@torch.no_grad()
def features_of(model: MAE, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """``(M, D)`` encoder features (mean of the patch tokens, no masking)."""
    model.eval()
    return torch.cat([model.features(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]).numpy()


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Test accuracy of a logistic regression on standardised features."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    probe.fit(train_x, train_y)
    return float(probe.score(test_x, test_y))


def _train_classifier(model, images, labels, test_loader, epochs: int, seed: int) -> float:
    loader = DataLoader(TensorDataset(images, labels), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    fit(model, loader, epochs=epochs, lr=1e-3, weight_decay=0.05, warmup=1.0, seed=seed, quiet=True)
    return float(evaluate(model, test_loader)["accuracy"])


def _summary(values: list[float]) -> dict:
    return {
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    pretrained = checkpoints.load("mae_fashion")
    test = FashionMNIST("test")
    test_x, test_y = test.images, test.labels
    test_loader = DataLoader(TensorDataset(test_x, test_y), batch_size=1000)
    pretrained_test = features_of(pretrained, test_x)
    rows: dict[str, list[float]] = {k: [] for k in ("probe_mae", "probe_random", "probe_pixels", "finetune", "scratch")}
    for seed in range(args.seeds):
        labelled = FashionMNIST("train", size=args.labels, seed=seed)
        x, y = labelled.images, labelled.labels
        torch.manual_seed(seed)
        random_encoder = MAE(pretrained.config)
        rows["probe_mae"].append(linear_probe(features_of(pretrained, x), y.numpy(), pretrained_test, test_y.numpy()))
        rows["probe_random"].append(
            linear_probe(features_of(random_encoder, x), y.numpy(), features_of(random_encoder, test_x), test_y.numpy())
        )
        rows["probe_pixels"].append(linear_probe(x.flatten(1).numpy(), y.numpy(), test_x.flatten(1).numpy(), test_y.numpy()))
        rows["finetune"].append(_train_classifier(pretrained.to_classifier(10), x, y, test_loader, args.epochs, seed))
        torch.manual_seed(seed)
        scratch = MAE(pretrained.config).to_classifier(10)
        rows["scratch"].append(_train_classifier(scratch, x, y, test_loader, args.epochs, seed))
        logger.info("seed %d: %s", seed, {k: v[-1] for k, v in rows.items()})
    results = {
        "checkpoint": "mae_fashion",
        "labels": args.labels,
        "test_images": len(test_y),
        "finetune_recipe": {"epochs": args.epochs, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.05,
                            "warmup_epochs": 1.0, "optimizer": "AdamW"},  # fmt: skip
        "accuracy": {k: _summary(v) for k, v in rows.items()},
        "masked_mse": checkpoints.info("mae_fashion")["metrics"]["test_masked_mse"],
    }
    path = write_results("mae_fashion", results, start, seeds=list(range(args.seeds)),
                         command="python -m vitcourse.scripts.eval_mae")  # fmt: skip
    for key, value in results["accuracy"].items():
        print(f"{key:<14}{value['mean']:.4f} ± {value['std']:.4f}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
