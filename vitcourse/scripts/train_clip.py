"""Train chapter 5's mini-CLIP on the generated world's Spanish captions and ship it
as the checkpoint ``clip_world_tiny``.

    OMP_NUM_THREADS=1 nice -n 10 python -m vitcourse.scripts.train_clip

Image–caption pairs from :func:`vitcourse.clip_world.make_pairs` (no held-out
colour–shape combination in any training image), the symmetric contrastive loss
(:func:`vitcourse.models.clip_loss`) with the learned temperature clamped at 100, AdamW
with a linear warm-up and a cosine decay. The card records the loss and the
temperature every ``log_every`` steps and every number of
:func:`vitcourse.clip_world.evaluate` (retrieval, zero-shot with and without prompt
ensembling, unseen combinations).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from ..clip_world import WORLD, Pairs, WordTokenizer, evaluate, make_pairs, preprocess
from ..models import CLIP, create_model
from ..ocr.results import git_commit, provenance
from ..runtime import seed_everything

__all__ = ["MODEL", "NAME", "main", "train"]

MODEL = "clip_world_tiny"
NAME = "clip_world_tiny"


def _lr(step: int, steps: int, warmup: int, lr: float) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))


def train(
    steps: int = 1000,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    warmup: int = 100,
    train_size: int = 8000,
    seed: int = 0,
    log_every: int = 50,
    overrides: dict | None = None,
    pairs: Pairs | None = None,
) -> tuple[CLIP, dict]:
    """Train from scratch; returns the model and a record of the run (history, data,
    recipe). ``overrides`` change fields of the preset's
    :class:`~vitcourse.models.CLIPConfig` (e.g. ``{"patch_size": 4}``). ``pairs``
    replaces the world's ``train_size`` pairs by others (DALL-E's reranker trains on
    DALL-E's own pairs, :func:`vitcourse.scripts.train_dalle.train_reranker`)."""
    seed_everything(seed)
    tokenizer = WordTokenizer()
    model = create_model(MODEL, **(overrides or {}))
    t0 = time.perf_counter()
    if pairs is None:
        pairs = make_pairs(train_size, seed, 0)
    train_size = len(pairs.captions)
    images, ids = preprocess(pairs.images), tokenizer(pairs.captions)
    generation_seconds = time.perf_counter() - t0
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0}],
        lr=lr,
    )
    g = torch.Generator().manual_seed(seed)
    history = {"step": [], "loss": [], "logit_scale": [], "temperature": []}
    order = torch.randperm(train_size, generator=g)
    cursor, running = 0, []
    model.train()
    for step in range(steps):
        if cursor + batch_size > train_size:
            order, cursor = torch.randperm(train_size, generator=g), 0
        batch = order[cursor : cursor + batch_size]
        cursor += batch_size
        for group in opt.param_groups:
            group["lr"] = _lr(step, steps, warmup, lr)
        loss = model.loss(images[batch], ids[batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():  # the paper's clipping: exp(t) stays within [1, 100]
            model.logit_scale.clamp_(0, model.config.logit_scale_max)
        running.append(loss.item())
        if (step + 1) % log_every == 0 or step == 0:
            history["step"].append(step + 1)
            history["loss"].append(round(sum(running) / len(running), 4))
            history["logit_scale"].append(round(float(model.logit_scale.detach()), 4))
            history["temperature"].append(round(model.temperature, 5))
            running = []
            print(
                f"step {step + 1}: loss {history['loss'][-1]:.3f} "
                f"T {history['temperature'][-1]:.4f} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    model.eval()
    record = {
        "history": history,
        "data": {
            "name": "generated world, Spanish captions (vitcourse.clip_world.make_pairs)",
            "img_size": list(WORLD.img_size),
            "shapes_per_image": [WORLD.min_shapes, WORLD.max_shapes],
            "train_pairs": train_size,
            "seed": seed,
            "split": 0,
            "held_out_combinations": "vitcourse.clip_world.HELD_OUT",
            "vocabulary": len(tokenizer),
            "generation_seconds": round(generation_seconds, 1),
        },
        "recipe": {
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "weight_decay": weight_decay,
            "warmup": warmup,
            "schedule": "linear warm-up, cosine decay",
            "optimizer": "AdamW (no decay on norms, biases, logit_scale)",
            "loss": "clip_loss, logit_scale clamped to [0, log 100]",
        },
    }
    return model, record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="override a CLIPConfig field of the preset, e.g. --set patch_size=4",
    )
    parser.add_argument("--root", default=None, help="checkpoint registry folder")
    args = parser.parse_args(argv)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    torch.set_num_threads(args.threads)
    start, commit = time.perf_counter(), git_commit()
    model, record = train(
        args.steps, train_size=args.train_size, seed=args.seed, overrides=overrides
    )
    train_seconds = time.perf_counter() - start
    metrics = evaluate(model, WordTokenizer())
    print(metrics)
    from ..checkpoints import register

    c = model.config

    command = "OMP_NUM_THREADS=1 nice -n 10 python -m vitcourse.scripts.train_clip"
    if args.steps != 1000 or args.seed != 0 or args.train_size != 8000:
        command += f" --steps {args.steps} --seed {args.seed}"
        command += f" --train-size {args.train_size}"
    command += "".join(f" --set {s}" for s in args.set)
    register(
        NAME,
        model,
        MODEL,
        overrides,
        root=args.root,
        description=(
            f"mini-CLIP (ViT {c.vision_width}x{c.vision_depth} on {c.patch_size}x"
            f"{c.patch_size} patches + causal text encoder {c.text_width}x"
            f"{c.text_depth}) trained contrastively on the generated world's "
            "Spanish captions"
        ),
        data=record["data"],
        recipe=record["recipe"],
        metrics=metrics,
        history=record["history"],
        build=command,
        provenance=provenance(
            command,
            time.perf_counter() - start,
            commit,
            threads=args.threads,
            train_seconds=round(train_seconds, 1),
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
