"""Train the small class-conditional DiT on Fashion-MNIST and ship it as ``dit_fashion``.

    OMP_NUM_THREADS=1 nice -n 15 python -m vitcourse.scripts.train_dit           # the shipped recipe
    python -m vitcourse.scripts.train_dit --steps 20 --root /tmp/ckpt --sweep-per-class 2  # a quick try

DDPM's recipe at a CPU's size: images scaled to ``[-1, 1]``, ``T = 1000`` linear β,
the ε-prediction loss (:func:`~vitcourse.models.diffusion.diffusion_loss`), 10 % of
the labels dropped for classifier-free guidance, AdamW with warm-up and cosine decay,
and an exponential moving average (EMA) of the weights, which is what is shipped and
sampled from (as in DiT).

After training (or alone, ``--eval-only``, on the shipped weights) the script measures
what the book shows: for each guidance scale and seed it generates ``sweep_per_class``
images of every class with DDIM and asks the shipped Fashion-MNIST classifier
(``resnet_fashion``, whose hash it records) which class it sees; the same classifier on
real test images is the ceiling. Everything lands in the card
``dit_fashion.json`` and in ``vitcourse/results/dit_fashion.json`` with provenance.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import time

import torch

from .. import checkpoints
from ..checkpoints import register
from ..data import FashionMNIST
from ..data.mnist import FASHION_MEAN, FASHION_STD
from ..models import create_model
from ..models.diffusion import DiT, NoiseSchedule, diffusion_loss, sample
from ..runtime import seed_everything
from ..train.loop import param_groups
from ..train.metrics import accuracy, predict
from ..train.schedule import warmup_cosine_scheduler
from .provenance import read_results, write_results

__all__ = [
    "CLASSIFIER",
    "CONFIG",
    "MODEL",
    "NAME",
    "build_command",
    "classify",
    "eval_eps_mse",
    "guidance_sweep",
    "load_images",
    "main",
    "measure",
    "real_accuracy",
    "train",
]

logger = logging.getLogger(__name__)

MODEL = "dit_fashion_tiny"
NAME = "dit_fashion"
CLASSIFIER = "resnet_fashion"
CONFIG: dict = {"embed_dim": 96, "depth": 6, "num_heads": 4}


def load_images(split: str, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST images scaled to ``[-1, 1]`` (diffusion's range) and their labels.

    Returns:
        ``(images (M, 1, 28, 28), labels (M,))``.
    """
    data = FashionMNIST(split, size=size, normalize=False)
    return data.images * 2 - 1, data.labels


@torch.no_grad()
def classify(classifier: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The classifier's predicted class for images in ``[-1, 1]`` (normalised as it was trained).

    Returns:
        ``(M,)`` int64.
    """
    pixels = (images + 1) / 2  # [0, 1]
    return predict(classifier, (pixels - FASHION_MEAN) / FASHION_STD, batch_size=batch_size).labels


@torch.no_grad()
def eval_eps_mse(model: DiT, schedule: NoiseSchedule, images: torch.Tensor, labels: torch.Tensor,
                 seed: int = 0, batch_size: int = 250) -> float:  # fmt: skip
    """The ε-prediction loss on ``images`` with ``t`` and ``ε`` fixed by ``seed`` (no label dropout).

    Returns:
        The mean squared error over all images.
    """
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for start in range(0, len(images), batch_size):
        x0, y = images[start : start + batch_size], labels[start : start + batch_size]
        total += float(diffusion_loss(model, schedule, x0, y, generator)) * len(x0)
    return total / len(images)


def guidance_sweep(model: DiT, classifier: torch.nn.Module, scales=(0.0, 1.0, 2.0, 4.0), seeds=(0, 1, 2),
                   per_class: int = 20, num_steps: int = 25) -> dict:  # fmt: skip
    """Generate ``per_class`` images of every class per scale and seed; the classifier's accuracy.

    Args:
        model: the DiT.
        classifier: a Fashion-MNIST classifier taking normalised images.
        scales: classifier-free guidance scales ``s``.
        seeds: seeds of the starting noise (one sweep each).
        per_class: images per class and run.
        num_steps: DDIM steps.

    Returns:
        ``{"scales", "seeds", "accuracy": {scale: [per seed]}, "seconds"}``.
    """
    schedule = NoiseSchedule()
    labels = torch.arange(model.config.num_classes).repeat_interleave(per_class)
    accuracies: dict[str, list[float]] = {}
    start = time.perf_counter()
    for scale in scales:
        accuracies[str(scale)] = []
        for seed in seeds:
            generator = torch.Generator().manual_seed(seed)
            images = sample(model, schedule, labels, scale, num_steps, generator=generator)
            accuracies[str(scale)].append(round(accuracy(classify(classifier, images), labels), 4))
        logger.info("guidance %.1f: accuracy %s (%.0f s)", scale, accuracies[str(scale)], time.perf_counter() - start)
    return {"scales": list(scales), "seeds": list(seeds), "per_class": per_class, "ddim_steps": num_steps,
            "accuracy": accuracies, "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def real_accuracy(classifier: torch.nn.Module, seeds=(0, 1, 2), per_class: int = 20) -> dict:
    """The ceiling: the classifier on real test images, all of them and in subsets the sweep's size.

    Returns:
        ``{"test_accuracy": all 10,000, "subsets": [one per seed]}``.
    """
    images, labels = load_images("test")
    predicted = classify(classifier, images)
    subsets = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.cat([
            torch.nonzero(labels == c).flatten()[torch.randperm(int((labels == c).sum()), generator=generator)[:per_class]]
            for c in range(10)
        ])  # fmt: skip
        subsets.append(round(accuracy(predicted[chosen], labels[chosen]), 4))
    return {"test_accuracy": round(accuracy(predicted, labels), 4), "subsets": subsets}


def train(steps: int = 2000, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0,
          warmup: int = 100, ema_decay: float = 0.995, seed: int = 0, log_every: int = 50,
          init: DiT | None = None) -> tuple[DiT, dict]:  # fmt: skip
    """Train the DiT (from scratch, or on from ``init``'s weights); returns the EMA model
    (eval mode) and the record of the run."""
    seed_everything(seed)
    images, labels = load_images("train")
    model = create_model(MODEL, **CONFIG) if init is None else copy.deepcopy(init)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    schedule = NoiseSchedule()
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr)
    scheduler = warmup_cosine_scheduler(optimizer, steps, min(warmup, steps // 10))
    generator = torch.Generator().manual_seed(seed)
    history = {"step": [], "loss": []}
    order, cursor, running = torch.randperm(len(images), generator=generator), 0, []
    start, cpu_start = time.perf_counter(), time.process_time()
    model.train()
    for step in range(steps):
        if cursor + batch_size > len(images):
            order, cursor = torch.randperm(len(images), generator=generator), 0
        batch = order[cursor : cursor + batch_size]
        cursor += batch_size
        loss = diffusion_loss(model, schedule, images[batch], labels[batch], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():  # the EMA weights: a smoothed copy that samples better
            for e, p in zip(ema.parameters(), model.parameters()):
                e.lerp_(p, 1 - ema_decay)
        running.append(float(loss.detach()))
        if (step + 1) % log_every == 0 or step == 9:
            history["step"].append(step + 1)
            history["loss"].append(round(sum(running) / len(running), 4))
            running = []
            logger.info("step %d: loss %.4f (%.1f s, %.2f s/step)", step + 1, history["loss"][-1],
                        time.perf_counter() - start, (time.perf_counter() - start) / (step + 1))  # fmt: skip
    record = {
        "history": history,
        "train_seconds": round(time.perf_counter() - start, 1),
        "train_cpu_seconds": round(time.process_time() - cpu_start, 1),
        "torch_threads": torch.get_num_threads(),
        "epochs": round(steps * batch_size / len(images), 2),
    }
    return ema, record


def build_command(recipe: dict) -> str:
    """The commands that train the shipped weights again: one per stage."""
    stages = [recipe]
    while "init" in stages[0]:
        stages.insert(0, stages[0]["init"]["recipe"])
    commands = [f"python -m vitcourse.scripts.train_dit --steps {stages[0]['steps']}"]
    commands += [f"python -m vitcourse.scripts.train_dit --init-from --steps {stage['steps']}" for stage in stages[1:]]
    return " && ".join(commands)


TRAIN_KEYS = ("train_seconds", "train_cpu_seconds", "torch_threads", "epochs")


def measure(model: DiT, record: dict, per_class: int) -> tuple[dict, dict, dict]:
    """What the card and the book report: test losses, the test's check, the sweep, the ceiling.

    Args:
        model: the trained DiT.
        record: the training record (``history`` and :data:`TRAIN_KEYS`).
        per_class: images per class and run of the guidance sweep.

    Returns:
        ``(metrics, sweep, ceiling)``.
    """
    schedule = NoiseSchedule()
    test_images, test_labels = load_images("test")
    classifier = checkpoints.load(CLASSIFIER)
    check_labels = torch.arange(10).repeat(2)
    check = sample(model, schedule, check_labels, 4.0, 10, generator=torch.Generator().manual_seed(0))
    metrics = {
        "test_eps_mse": round(eval_eps_mse(model, schedule, test_images, test_labels), 5),
        "test_eps_mse_500": round(eval_eps_mse(model, schedule, test_images[:500], test_labels[:500]), 5),
        # what the test recomputes: 20 samples, guidance 4, 10 DDIM steps, seed 0
        "check_accuracy_20": round(accuracy(classify(classifier, check), check_labels), 4),
        "classifier_sha256": checkpoints.info(CLASSIFIER)["sha256"],
        "final_train_loss": record["history"]["loss"][-1],
        **{k: record[k] for k in TRAIN_KEYS},
    }
    logger.info("test eps MSE %.4f; check accuracy %.2f", metrics["test_eps_mse"], metrics["check_accuracy_20"])
    sweep = guidance_sweep(model, classifier, per_class=per_class)
    ceiling = real_accuracy(classifier, per_class=per_class)
    return metrics, sweep, ceiling


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1800)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sweep-per-class", type=int, default=10)
    parser.add_argument("--eval-only", action="store_true",
                        help="re-measure the shipped checkpoint without training (e.g. after the classifier changed)")
    parser.add_argument("--init-from", action="store_true",
                        help="train on from the shipped dit_fashion's weights (a second stage) instead of from scratch")
    parser.add_argument("--root", default=None, help="registry folder (default: the package's)")
    parser.add_argument("--results-root", default=None, help="results folder (default: vitcourse/results)")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.eval_only:  # the same weights, measured again; the training record is kept
        card = checkpoints.info(NAME, args.root)
        model = checkpoints.load(NAME, args.root)
        record = {"history": read_results(NAME, args.results_root)["history"],
                  **{k: card["metrics"][k] for k in TRAIN_KEYS}}  # fmt: skip
        recipe = card["recipe"]
    else:
        init = checkpoints.load(NAME, args.root) if args.init_from else None
        model, record = train(args.steps, args.batch_size, args.lr, seed=args.seed, init=init)
        recipe = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "weight_decay": 0.0,
                  "warmup": 100, "schedule": "linear warm-up, cosine decay", "ema_decay": 0.995,
                  "class_dropout": 0.1, "noise": "DDPM linear beta 1e-4..0.02, T=1000", "seed": args.seed}  # fmt: skip
        if init is not None:  # a second stage: the first one's recipe, time and history carried along
            card, first = checkpoints.info(NAME, args.root), read_results(NAME, args.results_root)
            recipe["init"] = {"checkpoint": NAME, "sha256": card["sha256"], "recipe": card["recipe"]}
            offset = first["history"]["step"][-1]
            record["history"] = {"step": first["history"]["step"] + [offset + s for s in record["history"]["step"]],
                                 "loss": first["history"]["loss"] + record["history"]["loss"]}  # fmt: skip
            for key in ("train_seconds", "train_cpu_seconds", "epochs"):
                record[key] = round(record[key] + card["metrics"][key], 2)
    metrics, sweep, ceiling = measure(model, record, args.sweep_per_class)
    entry = register(
        NAME, model, MODEL, CONFIG, root=args.root,
        description="small class-conditional DiT (28x28 grey, 4x4 patches, D=96, 6 blocks, adaLN-Zero) "
        "trained on Fashion-MNIST for classifier-free guided diffusion",
        data={"name": "fashion_mnist", "split": "train", "size": 55000, "range": "[-1, 1]"},
        recipe=recipe, metrics=metrics, build=build_command(recipe),
        classifier=CLASSIFIER,
    )  # fmt: skip
    path = write_results(
        NAME,
        {"metrics": metrics, "history": record["history"], "sweep": sweep, "ceiling": ceiling,
         "checkpoint_sha256": entry["sha256"], "recipe": recipe},
        start, root=args.results_root, seeds=[recipe["seed"], *sweep["seeds"]],
        command=" ".join(["python -m vitcourse.scripts.train_dit", *argv]),
    )  # fmt: skip
    print(f"registered {NAME}: test eps MSE {metrics['test_eps_mse']:.4f}; sweep {sweep['accuracy']}; "
          f"ceiling {ceiling}; results in {path}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
