"""Train the tiny ImageGPT on Fashion-MNIST (14×14, 16 grey levels) and probe its features.

    python -m vitcourse.scripts.train_imagegpt            # train, register imagegpt_fashion
    python -m vitcourse.scripts.train_imagegpt probe      # linear probes -> results/imagegpt_fashion.json
    python -m vitcourse.scripts.train_imagegpt evaluate   # the card's test metrics measured again, subset added

``train``: the images are halved to 14×14 (2×2 averages), a 16-colour palette is fitted
by k-means on the training pixels, and the ``imagegpt_tiny_14`` GPT learns
``p(x) = ∏ p(x_i | x_<i)`` over the 196 pixels in raster order, without labels. The
palette is stored in the checkpoint's card; the test images' negative log-likelihood
(nats and bits per pixel) is recorded, over all 10,000 test images and over a fixed
stratified subset of them (:data:`SUBSET`, 100 per class), the one the test suite
re-measures in seconds.

``evaluate``: the shipped weights measured again over the whole test set (it must give
the card's number) and over the subset, whose number is stored in the card; the
weights and their hash stay as they are.

``probe``: logistic regression on the average of the last block's hidden states, for
the trained model and for the same architecture with random weights (3 seeds: each
draws another labelled subset and another random initialisation).
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import time

import torch
import torch.nn.functional as F

from .. import checkpoints
from ..data import FashionMNIST
from ..models import create_model
from ..models.imagegpt import ColorPalette, autoregressive_loss, features
from ..runtime import seed_everything
from ..train.loop import param_groups
from ..train.schedule import warmup_cosine_scheduler
from .provenance import write_results

__all__ = ["SUBSET", "downsample", "load_palette", "main", "subset_tokens", "tokens_of"]

logger = logging.getLogger(__name__)

MODEL = "imagegpt_tiny_14"
NAME = "imagegpt_fashion"
COLORS = 16
SIDE = 14
# The test images tests/test_genimg_checkpoints.py re-measures: FashionMNIST("test", size, seed),
# stratified, the same images on every machine.
SUBSET = {"split": "test", "size": 1000, "seed": 0}


def downsample(images: torch.Tensor) -> torch.Tensor:
    """28×28 → 14×14 by averaging 2×2 blocks: ``(N, 1, 28, 28)`` → ``(N, 1, 14, 14)``."""
    return F.avg_pool2d(images, 2)


def _pixels(split: str, size: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    data = FashionMNIST(split, size=size, seed=seed, normalize=False)
    return downsample(data.images), data.labels


def load_palette(name: str = NAME) -> ColorPalette:
    """The palette stored in the card of a shipped ImageGPT checkpoint."""
    return ColorPalette(torch.tensor(checkpoints.info(name)["palette"]))


def tokens_of(images: torch.Tensor, palette: ColorPalette) -> torch.Tensor:
    """``(N, 1, 14, 14)`` images in ``[0, 1]`` → ``(N, 196)`` palette indices."""
    return torch.cat([palette.encode(images[i : i + 1000]) for i in range(0, len(images), 1000)])


def subset_tokens(palette: ColorPalette) -> torch.Tensor:
    """The :data:`SUBSET` test images as palette indices, ``(1000, 196)``."""
    return tokens_of(_pixels(SUBSET["split"], SUBSET["size"], SUBSET["seed"])[0], palette)


def _test_metrics(model, palette: ColorPalette, test_tokens: torch.Tensor) -> dict:
    """The negative log-likelihood over every test image and over the :data:`SUBSET`."""
    test = mean_nll(model, test_tokens)
    return {
        "test_nll_nats_per_pixel": test,
        "test_bits_per_pixel": test / math.log(2),
        "test_subset": dict(SUBSET),
        "test_subset_nll_nats_per_pixel": mean_nll(model, subset_tokens(palette)),
    }


@torch.no_grad()
def mean_nll(model, tokens: torch.Tensor, batch_size: int = 500) -> float:
    """Mean ``-ln p(x_i | x_<i)`` per pixel over ``tokens``, in nats."""
    model.eval()
    total = 0.0
    for i in range(0, len(tokens), batch_size):
        batch = tokens[i : i + batch_size]
        total += float(autoregressive_loss(model, batch)) * len(batch)
    return total / len(tokens)


def train(epochs: int, train_size: int, batch_size: int = 64, lr: float = 2e-3, seed: int = 0) -> None:
    seed_everything(seed)
    start = time.perf_counter()
    train_images, _ = _pixels("train", train_size)
    palette = ColorPalette.fit(train_images, COLORS, seed=seed)
    train_tokens = tokens_of(train_images, palette)
    val_tokens = tokens_of(_pixels("val", 1000)[0], palette)
    test_tokens = tokens_of(_pixels("test")[0], palette)
    model = create_model(MODEL)
    optimizer = torch.optim.AdamW(param_groups(model, 0.01), lr=lr, betas=(0.9, 0.95))
    steps_per_epoch = len(train_tokens) // batch_size
    scheduler = warmup_cosine_scheduler(optimizer, epochs * steps_per_epoch, steps_per_epoch // 2)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_tokens), generator=generator)
        running = 0.0
        for i in range(steps_per_epoch):
            loss = autoregressive_loss(model, train_tokens[order[i * batch_size : (i + 1) * batch_size]])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            running += float(loss.detach())
        val = mean_nll(model, val_tokens)
        history.append({"epoch": epoch + 1, "train_nll": running / steps_per_epoch, "val_nll": val})
        logger.info("epoch %d: train %.4f, val %.4f nats/pixel", epoch + 1, running / steps_per_epoch, val)
    measured = _test_metrics(model, palette, test_tokens)
    test = measured["test_nll_nats_per_pixel"]
    counts = torch.bincount(train_tokens.flatten(), minlength=COLORS).float()
    unigram = float(-(counts / counts.sum() * (counts / counts.sum()).clamp_min(1e-12).log()).sum())
    metrics = {
        **measured,
        "unigram_nll_nats_per_pixel": unigram,
        "history": history,
        "train_seconds": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
    }
    entry = checkpoints.register(
        NAME,
        model.eval(),
        MODEL,
        {},
        description="tiny ImageGPT (4 blocks, D=64) on Fashion-MNIST at 14x14 in 16 grey levels",
        data={"name": "fashion_mnist", "split": "train", "size": train_size, "img_size": SIDE,
              "downsample": "2x2 average", "normalize": False, "colors": COLORS},
        recipe={"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": 0.01,
                "betas": [0.9, 0.95], "grad_clip": 1.0, "seed": seed},
        metrics=metrics,
        palette=palette.centers.tolist(),
        build="python -m vitcourse.scripts.train_imagegpt",
    )  # fmt: skip
    print(f"registered {entry['name']}: test {test:.4f} nats/pixel ({test / math.log(2):.3f} bits)")


def evaluate() -> None:
    """Measure the shipped checkpoint again and store the subset's number in its card.

    The whole test set must give the card's number (the build's): otherwise the weights,
    the data or the code changed, and the card is left alone.
    """
    import json

    from .provenance import provenance

    start = time.perf_counter()
    palette = load_palette()
    model = checkpoints.load(NAME)
    measured = _test_metrics(model, palette, tokens_of(_pixels("test")[0], palette))
    card = checkpoints.registry_dir() / f"{NAME}.json"
    stored = json.loads(card.read_text(encoding="utf-8"))
    recorded = stored["metrics"]["test_nll_nats_per_pixel"]
    if abs(measured["test_nll_nats_per_pixel"] - recorded) > 1e-4:
        raise SystemExit(
            f"{NAME}: {measured['test_nll_nats_per_pixel']:.6f} nats/pixel over the test set, the card says "
            f"{recorded:.6f}: rebuild it (python -m vitcourse.scripts.train_imagegpt)"
        )
    for key in ("test_subset", "test_subset_nll_nats_per_pixel"):
        stored["metrics"][key] = measured[key]
    stored.setdefault("provenance", {})["evaluation"] = provenance(
        start, command="python -m vitcourse.scripts.train_imagegpt evaluate"
    )
    card.write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{NAME}: test {measured['test_nll_nats_per_pixel']:.6f} nats/pixel (card {recorded:.6f}), "
          f"subset of {SUBSET['size']} {measured['test_subset_nll_nats_per_pixel']:.6f}: written to {card}")  # fmt: skip


def probe(seeds: int, labels: int, test_size: int | None = None) -> None:
    from .eval_mae import linear_probe

    start = time.perf_counter()
    palette = load_palette()
    trained = checkpoints.load(NAME)
    middle = trained.config.depth // 2
    test_images, test_y = _pixels("test", test_size)  # a stratified subset, or all
    test_tokens = tokens_of(test_images, palette)
    trained_test = {"last": features(trained, test_tokens).numpy(),
                    "middle": features(trained, test_tokens, middle).numpy()}  # fmt: skip
    rows: dict[str, list[float]] = {
        "probe_imagegpt": [], "probe_imagegpt_middle": [], "probe_random": [], "probe_random_middle": [],
        "probe_pixels": [],
    }  # fmt: skip
    for seed in range(seeds):
        images, y = _pixels("train", labels, seed)
        tokens = tokens_of(images, palette)
        torch.manual_seed(seed)
        random_model = create_model(MODEL).eval()
        for suffix, blocks in (("", None), ("_middle", middle)):
            rows[f"probe_imagegpt{suffix}"].append(linear_probe(
                features(trained, tokens, blocks).numpy(), y.numpy(),
                trained_test["last" if blocks is None else "middle"], test_y.numpy()))  # fmt: skip
            rows[f"probe_random{suffix}"].append(linear_probe(
                features(random_model, tokens, blocks).numpy(), y.numpy(),
                features(random_model, test_tokens, blocks).numpy(), test_y.numpy()))  # fmt: skip
        rows["probe_pixels"].append(
            linear_probe(images.flatten(1).numpy(), y.numpy(), test_images.flatten(1).numpy(), test_y.numpy())
        )
        logger.info("seed %d: %s", seed, {k: v[-1] for k, v in rows.items()})
    summary = {
        k: {"mean": statistics.mean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "values": v}
        for k, v in rows.items()
    }
    results = {"checkpoint": NAME, "labels": labels, "test_size": test_size, "test_images": len(test_y),
               "accuracy": summary,
               "features": {"": "after the last block", "_middle": f"after block {middle} of "
                            f"{trained.config.depth}", "pooling": "normalised, averaged over the 196 positions"}}  # fmt: skip
    path = write_results(NAME, results, start, seeds=list(range(seeds)),
                         command="python -m vitcourse.scripts.train_imagegpt probe")  # fmt: skip
    for key, value in summary.items():
        print(f"{key:<24}{value['mean']:.4f} ± {value['std']:.4f}")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", nargs="?", default="train", choices=["train", "probe", "evaluate"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labels", type=int, default=2000)
    parser.add_argument(
        "--test-size", type=int, default=None, help="probe on a stratified subset of the test split (default: all)"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.stage == "train":
        train(args.epochs, args.train_size)
    elif args.stage == "evaluate":
        evaluate()
    else:
        probe(args.seeds, args.labels, args.test_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
