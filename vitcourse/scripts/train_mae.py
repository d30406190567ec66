"""Pre-train the tiny MAE on Fashion-MNIST and register it as the ``mae_fashion`` checkpoint.

    python -m vitcourse.scripts.train_mae                # the shipped recipe
    python -m vitcourse.scripts.train_mae --epochs 1     # a quick try

No labels are used: the model learns to fill in 75 % of each image from the other
25 %. The recipe is the paper's (AdamW with β₂ = 0.95, weight decay 0.05, warm-up then
cosine, 75 % masking, no augmentation beyond the random masks) at a CPU's size: the
``mae_tiny_patch4_28`` preset, 49 patches of 4×4 pixels, a few epochs.

The masked-patch loss is measured on the official test images with fixed masks
(noise from a generator seeded 0), the number the card records and the test re-checks.
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from ..checkpoints import register
from ..data import FashionMNIST
from ..models import create_model
from ..runtime import seed_everything
from ..train.loop import param_groups
from ..train.schedule import warmup_cosine_scheduler

__all__ = ["MODEL", "CONFIG", "evaluate_loss", "main", "train"]

logger = logging.getLogger(__name__)

MODEL = "mae_tiny_patch4_28"
CONFIG: dict = {}  # the preset as it is


@torch.no_grad()
def evaluate_loss(model, images: torch.Tensor, batch_size: int = 500, seed: int = 0) -> float:
    """Mean masked-patch loss over ``images`` with masks fixed by ``seed``.

    Args:
        model: an :class:`~vitcourse.models.MAE`.
        images: ``(M, C, H, W)``.
        batch_size: images per forward pass.
        seed: seeds the noise that picks the hidden patches.

    Returns:
        The loss averaged over images (every batch weighted by its size).
    """
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(len(images), model.num_patches, generator=generator)
    total = 0.0
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        out = model(batch, noise=noise[start : start + batch_size])
        total += float(out.loss) * len(batch)
    return total / len(images)


def train(
    epochs: int = 6,
    batch_size: int = 256,
    lr: float = 1.5e-3,
    weight_decay: float = 0.05,
    warmup_epochs: float = 1.0,
    seed: int = 0,
    train_size: int | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Pre-train the MAE.

    Returns:
        ``(model, metrics)``: the model in eval mode; masked-patch losses on the
        validation and test images, per-epoch training losses, seconds.
    """
    seed_everything(seed)
    train_images = FashionMNIST("train", size=train_size).images  # (M, 1, 28, 28), normalised
    val_images = FashionMNIST("val").images
    test_images = FashionMNIST("test").images
    model = create_model(MODEL, **CONFIG)
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.95))
    steps_per_epoch = len(train_images) // batch_size
    total = epochs * steps_per_epoch
    scheduler = warmup_cosine_scheduler(optimizer, total, int(warmup_epochs * steps_per_epoch))
    generator = torch.Generator().manual_seed(seed)
    history = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_images), generator=generator)
        running = 0.0
        for step in range(steps_per_epoch):
            batch = train_images[order[step * batch_size : (step + 1) * batch_size]]
            loss = model(batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += float(loss.detach())
        val = evaluate_loss(model, val_images)
        history.append({"epoch": epoch + 1, "train_loss": running / steps_per_epoch, "val_loss": val})
        logger.info("epoch %d: train %.4f, val %.4f (%.0f s)", epoch + 1, running / steps_per_epoch, val,
                    time.perf_counter() - start)  # fmt: skip
    metrics = {
        "test_masked_mse": evaluate_loss(model, test_images),
        "val_masked_mse": history[-1]["val_loss"],
        "history": history,
        "train_seconds": round(time.perf_counter() - start, 1),
        "train_cpu_seconds": round(time.process_time() - cpu_start, 1),
        "torch_threads": torch.get_num_threads(),
    }
    return model.eval(), metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--root", default=None, help="registry folder (default: the package's)")
    parser.add_argument("--name", default="mae_fashion")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    recipe = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": 0.05,
        "betas": [0.9, 0.95],
        "warmup_epochs": 1.0,
        "mask_ratio": 0.75,
        "seed": args.seed,
    }
    model, metrics = train(args.epochs, args.batch_size, args.lr, seed=args.seed, train_size=args.train_size)
    config = {key: value for key, value in vars(model.config).items()}
    entry = register(
        args.name,
        model,
        MODEL,
        config,
        root=args.root,
        description="tiny MAE (28x28 grey, 4x4 patches, D=64, 4 blocks; decoder 64-d, 2 blocks) "
        "pre-trained on Fashion-MNIST without labels",
        data={"name": "fashion_mnist", "split": "train", "size": args.train_size or 55000, "normalize": True},
        recipe=recipe,
        metrics=metrics,
        build="python -m vitcourse.scripts.train_mae",
    )
    print(f"registered {entry['name']}: test masked MSE {metrics['test_masked_mse']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
