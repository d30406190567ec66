"""Train DALL-E's two stages on the generated world, and the colour classifier that judges it.

    python -m vitcourse.scripts.train_dalle dvae         # stage 1: the dVAE  -> dvae_world
    python -m vitcourse.scripts.train_dalle colors       # the judge of colour -> resnet_colors
    python -m vitcourse.scripts.train_dalle transformer  # stage 2: the GPT   -> dalle_world
    python -m vitcourse.scripts.train_dalle evaluate     # generations judged -> results/dalle_world.json

Stage 1 trains the dVAE (:mod:`vitcourse.models.dvae`) on the world's images with the
Gumbel-softmax relaxation: the temperature falls from 1 to 1/16 and the KL weight β
rises from 0 to 1 (the paper's schedules, shortened). Stage 2 freezes it, turns every
training image into its 64 most probable tokens and trains the transformer on
caption + image tokens, the caption's tokens weighted 1/8 and the image's 7/8 as in
the paper. Images showing a held-out colour–shape pair
(:data:`~vitcourse.models.dalle.HELD_OUT`) are in neither stage's training set.

``evaluate`` draws images for captions of seen pairs and of held-out pairs and asks two
classifiers what they show: the shipped ``vit_shapes`` (the shape; it knows nothing of
colour) and ``resnet_colors``, trained here on the same world to name the shape's
colour (both measured on real images of the world first).
"""

from __future__ import annotations

import argparse
import logging
import math
import time

import torch
import torch.nn.functional as F

from ..checkpoints import load, register
from ..data import SHAPES_MEAN, SHAPES_STD
from ..data.backgrounds import COLOR_NAMES
from ..data.shapes import SHAPE_NAMES
from ..models import create_model
from ..models.dalle import HELD_OUT, CaptionedShapes, CaptionTokenizer, caption_for, world_layout
from ..models.dvae import elbo_terms, kl_to_uniform
from ..runtime import seed_everything
from ..train.loop import param_groups
from ..train.schedule import warmup_cosine_scheduler
from .provenance import write_results

__all__ = ["main"]

logger = logging.getLogger(__name__)

TRAIN_SIZE = 20_000
VAL_SIZE = 1_000
TEST_SIZE = 2_000


def _standardise(images: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` images as the shipped shape classifier and the colour classifier expect."""
    mean = torch.tensor(SHAPES_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(SHAPES_STD).view(1, 3, 1, 1)
    return (images - mean) / std


# -- stage 1: the dVAE -------------------------------------------------------------------


@torch.no_grad()
def dvae_metrics(model, images: torch.Tensor) -> dict:
    """Hard-token reconstruction error, codebook use and the bound's terms on ``images``."""
    model.eval()
    tokens = model.tokens(images)
    recon = model.decode_tokens(tokens)
    counts = torch.bincount(tokens.flatten(), minlength=model.config.num_tokens).float()
    p = counts / counts.sum()
    perplexity = math.exp(-(p[p > 0] * p[p > 0].log()).sum().item())
    torch.manual_seed(0)
    terms = elbo_terms(model, images, tau=1 / 16)
    return {
        "mse_hard_tokens": float(F.mse_loss(recon, images)),
        "codes_used": int((counts > 0).sum()),
        "code_perplexity": perplexity,
        **{f"{k}_nats": float(v.mean()) for k, v in terms.items()},
    }


def train_dvae(epochs: int, batch_size: int = 128, lr: float = 2e-3, seed: int = 0) -> None:
    seed_everything(seed)
    start = time.perf_counter()
    train = CaptionedShapes("train", TRAIN_SIZE).float_images()
    val = CaptionedShapes("val", VAL_SIZE).float_images()
    test = CaptionedShapes("test", TEST_SIZE, exclude_held_out=False).float_images()
    model = create_model("dvae_tiny_32")
    optimizer = torch.optim.AdamW(param_groups(model, 1e-4), lr=lr)
    steps = epochs * (len(train) // batch_size)
    scheduler = warmup_cosine_scheduler(optimizer, steps, warmup_steps=steps // 20)
    generator = torch.Generator().manual_seed(seed)
    n_pixels = train[0].numel()
    sigma = model.config.sigma
    step = 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        for i in range(len(train) // batch_size):
            progress = step / max(steps - 1, 1)
            tau = 1.0 * (1 / 16) ** progress  # exponential anneal 1 -> 1/16
            beta = min(1.0, 2 * progress)  # 0 -> 1 over the first half
            batch = train[order[i * batch_size : (i + 1) * batch_size]]
            out = model(batch, tau=tau)
            reconstruction = ((batch - out.recon) ** 2).flatten(1).sum(1) / (2 * sigma**2)
            loss = (reconstruction + beta * kl_to_uniform(out.logits)).mean() / n_pixels
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
        logger.info("dvae epoch %d: %s", epoch + 1, dvae_metrics(model, val))
    metrics = {"val": dvae_metrics(model, val), "test": dvae_metrics(model, test)}
    metrics["train_seconds"] = round(time.perf_counter() - start, 1)
    register(
        "dvae_world",
        model.eval(),
        "dvae_tiny_32",
        dict(vars(model.config)),
        description="tiny dVAE (Gumbel-softmax): 32x32 world images -> 8x8 tokens of 128 codes",
        data={"name": "world_captions", "world": "DALLE_WORLD", "train_size": TRAIN_SIZE,
              "held_out_excluded": [list(p) for p in HELD_OUT], "seed": seed},
        recipe={"epochs": epochs, "batch_size": batch_size, "lr": lr, "tau": "1 -> 1/16 exponential",
                "beta": "0 -> 1 over the first half", "seed": seed},
        metrics=metrics,
        build="python -m vitcourse.scripts.train_dalle dvae",
    )  # fmt: skip
    print("dvae_world:", metrics["test"])


# -- the colour judge -----------------------------------------------------------------


COLOR_MODEL = "resnet_pico"
COLOR_CONFIG = {"img_size": 32, "in_chans": 3, "num_classes": len(COLOR_NAMES)}


def train_colors(epochs: int = 15, batch_size: int = 128, seed: int = 0) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from ..train import evaluate, fit

    start = time.perf_counter()
    # All pairs, held-out ones included: this model measures, it is not the one tested.
    train = CaptionedShapes("train", 8000, seed=1, exclude_held_out=False)
    test = CaptionedShapes("test", TEST_SIZE, exclude_held_out=False)
    loaders = [
        DataLoader(TensorDataset(_standardise(d.float_images()), d.colors), batch_size=batch_size, shuffle=shuffle)
        for d, shuffle in ((train, True), (test, False))
    ]
    model = create_model(COLOR_MODEL, **COLOR_CONFIG)
    fit(model, loaders[0], epochs=epochs, lr=2e-3, seed=seed, quiet=True)
    accuracy = float(evaluate(model, loaders[1])["accuracy"])
    register(
        "resnet_colors",
        model.eval(),
        COLOR_MODEL,
        COLOR_CONFIG,
        description="tiny ResNet naming the colour of the world's one shape (10 colours); judges DALL-E",
        data={"name": "world_captions", "world": "DALLE_WORLD", "train_size": 8000, "seed": 1,
              "normalize": True},
        recipe={"epochs": epochs, "batch_size": batch_size, "lr": 2e-3, "seed": seed},
        metrics={"test_accuracy": accuracy, "train_seconds": round(time.perf_counter() - start, 1)},
        classes=list(COLOR_NAMES),
        build="python -m vitcourse.scripts.train_dalle colors",
    )  # fmt: skip
    print(f"resnet_colors: test accuracy {accuracy:.4f}")


# -- stage 2: the transformer ---------------------------------------------------------

TEXT_WEIGHT = 1 / 8  # the paper's weights of the caption's and the image's losses
IMAGE_WEIGHT = 7 / 8


@torch.no_grad()
def encode_dataset(data: CaptionedShapes, dvae, tokenizer: CaptionTokenizer, layout) -> torch.Tensor:
    """Full sequences ``(N, 1 + text_len + 64)``: start, caption ids, the dVAE's tokens."""
    images = data.float_images()
    image_tokens = torch.cat([dvae.tokens(images[i : i + 500]) for i in range(0, len(images), 500)])
    return layout.join(tokenizer.encode(data.captions), image_tokens)


def sequence_loss(model, sequences: torch.Tensor, text_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(weighted loss, caption loss, image loss)``, each a mean per token, in nats."""
    logits = model(sequences[:, :-1])  # (B, T - 1, V): position i predicts token i + 1
    nll = F.cross_entropy(logits.transpose(1, 2), sequences[:, 1:], reduction="none")  # (B, T - 1)
    text, image = nll[:, :text_len].mean(), nll[:, text_len:].mean()
    return TEXT_WEIGHT * text + IMAGE_WEIGHT * image, text, image


def train_transformer(epochs: int, batch_size: int = 64, lr: float = 2e-3, seed: int = 0) -> None:
    seed_everything(seed)
    start = time.perf_counter()
    dvae = load("dvae_world")
    tokenizer, layout = CaptionTokenizer(), world_layout()
    train = encode_dataset(CaptionedShapes("train", TRAIN_SIZE), dvae, tokenizer, layout)
    val = encode_dataset(CaptionedShapes("val", VAL_SIZE), dvae, tokenizer, layout)
    model = create_model("dalle_tiny")
    optimizer = torch.optim.AdamW(param_groups(model, 0.01), lr=lr, betas=(0.9, 0.95))
    steps_per_epoch = len(train) // batch_size
    scheduler = warmup_cosine_scheduler(optimizer, epochs * steps_per_epoch, steps_per_epoch // 2)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        for i in range(steps_per_epoch):
            loss, _, _ = sequence_loss(model, train[order[i * batch_size : (i + 1) * batch_size]], layout.text_len)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
        model.eval()
        with torch.no_grad():
            _, text, image = sequence_loss(model, val, layout.text_len)
        history.append({"epoch": epoch + 1, "val_text_nll": float(text), "val_image_nll": float(image)})
        logger.info("transformer epoch %d: %s", epoch + 1, history[-1])
    metrics = {**{k: v for k, v in history[-1].items() if k != "epoch"}, "history": history,
               "train_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    register(
        "dalle_world",
        model.eval(),
        "dalle_tiny",
        {},
        description="tiny DALL-E transformer: Spanish caption + 64 dVAE tokens (dvae_world), D=96, 4 blocks",
        data={"name": "world_captions", "world": "DALLE_WORLD", "train_size": TRAIN_SIZE,
              "held_out_excluded": [list(p) for p in HELD_OUT], "tokenizer": "dvae_world (argmax tokens)"},
        recipe={"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": 0.01, "betas": [0.9, 0.95],
                "loss_weights": {"text": TEXT_WEIGHT, "image": IMAGE_WEIGHT}, "seed": seed},
        metrics=metrics,
        build="python -m vitcourse.scripts.train_dalle transformer",
    )  # fmt: skip
    print("dalle_world:", history[-1])


# -- evaluation: does the drawing show what the caption asks? --------------------------


@torch.no_grad()
def judge(images: torch.Tensor, shapes: torch.Tensor, colors: torch.Tensor) -> dict:
    """Rates at which ``vit_shapes`` sees the asked shape and ``resnet_colors`` the asked colour."""
    shape_model, color_model = load("vit_shapes"), load("resnet_colors")
    x = _standardise(images)
    shape_ok = shape_model(x).argmax(1) == shapes
    color_ok = color_model(x).argmax(1) == colors
    return {
        "shape": float(shape_ok.float().mean()),
        "color": float(color_ok.float().mean()),
        "both": float((shape_ok & color_ok).float().mean()),
        "n": len(shapes),
    }


def caption_grid(pairs, per_pair: int, seed: int) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Captions asking for each (shape, colour) pair ``per_pair`` times, sizes and positions drawn."""
    generator = torch.Generator().manual_seed(seed)
    captions, shapes, colors = [], [], []
    for shape, color in pairs:
        for _ in range(per_pair):
            size = 1 + int(torch.randint(2, (1,), generator=generator))  # mediano or grande
            position = int(torch.randint(9, (1,), generator=generator))
            captions.append(caption_for(shape, color, size, position))
            shapes.append(SHAPE_NAMES.index(shape))
            colors.append(COLOR_NAMES.index(color))
    return captions, torch.tensor(shapes), torch.tensor(colors)


def evaluate_generations(per_pair_seen: int = 5, per_pair_held_out: int = 20, temperature: float = 1.0,
                         top_k: int | None = None, seed: int = 0) -> None:  # fmt: skip
    from ..models.dalle import bound_terms, generate_images

    start = time.perf_counter()
    dvae, transformer = load("dvae_world"), load("dalle_world")
    tokenizer, layout = CaptionTokenizer(), world_layout()
    real = CaptionedShapes("test", TEST_SIZE, exclude_held_out=False)
    real_images = real.float_images()
    results = {
        "judges_on_real_images": judge(real_images, real.shapes, real.colors),
        "judges_on_dvae_reconstructions": judge(
            torch.cat([dvae.decode_tokens(dvae.tokens(real_images[i : i + 500])) for i in range(0, TEST_SIZE, 500)]),
            real.shapes, real.colors),  # fmt: skip
    }
    seen = [(s, c) for s in SHAPE_NAMES for c in COLOR_NAMES if (s, c) not in HELD_OUT]
    generator = torch.Generator().manual_seed(seed)
    for name, pairs, per_pair in (("seen", seen, per_pair_seen), ("held_out", list(HELD_OUT), per_pair_held_out)):
        captions, shapes, colors = caption_grid(pairs, per_pair, seed)
        images = []
        for i in range(0, len(captions), 100):
            batch, _ = generate_images(transformer, dvae, layout, tokenizer.encode(captions[i : i + 100]),
                                       temperature=temperature, top_k=top_k, generator=generator)  # fmt: skip
            images.append(batch)
        results[f"generated_{name}"] = judge(torch.cat(images), shapes, colors)
        logger.info("%s: %s", name, results[f"generated_{name}"])
    torch.manual_seed(seed)
    batch = real_images[:64]
    terms = bound_terms(transformer, dvae, layout, batch, tokenizer.encode(real.captions[:64]),
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    results["bound_terms_nats_per_image"] = {k: float(v.mean()) for k, v in terms.items()}
    results["sampling"] = {"temperature": temperature, "top_k": top_k, "seed": seed,
                           "per_pair_seen": per_pair_seen, "per_pair_held_out": per_pair_held_out}  # fmt: skip
    results["held_out_pairs"] = [list(p) for p in HELD_OUT]
    path = write_results("dalle_world", results, start, seeds=[seed],
                         command="python -m vitcourse.scripts.train_dalle evaluate")  # fmt: skip
    print(json_summary(results))
    print(f"wrote {path}")


def json_summary(results: dict) -> str:
    keys = ("judges_on_real_images", "judges_on_dvae_reconstructions", "generated_seen", "generated_held_out")
    return "\n".join(f"{k}: {results[k]}" for k in keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["dvae", "colors", "transformer", "evaluate"])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.stage == "dvae":
        train_dvae(args.epochs or 8)
    elif args.stage == "colors":
        train_colors(args.epochs or 15)
    elif args.stage == "transformer":
        train_transformer(args.epochs or 5)
    else:
        evaluate_generations(temperature=args.temperature, top_k=args.top_k)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
