"""Train the receipt Donut of chapter 7 and ship it as the checkpoint ``donut_receipts``.

    OMP_NUM_THREADS=1 nice -n 10 python -m vitcourse.scripts.train_donut

Teacher forcing on generated receipts (every batch is new: the generator is endless),
AdamW with a linear warm-up and a cosine decay, then greedy decoding of held-out
receipts: CER of the decoded text and field accuracy of the parsed JSON. The weights
and their card go to :mod:`vitcourse.checkpoints`; the loss curve and the scores to
``vitcourse/ocr/results/train_donut.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict

import torch
from torch.utils.data import DataLoader

from ..models import create_model
from ..models.donut import Donut, donut_loss
from ..ocr.receipts import ReceiptDataset, receipt_scores
from ..ocr.results import git_commit, provenance, save
from ..runtime import seed_everything

__all__ = ["evaluate", "main", "train"]

MODEL = "donut_receipts"


@torch.no_grad()
def evaluate(
    model: Donut, dataset: ReceiptDataset, batch_size: int = 32
) -> tuple[dict, list[tuple[str, str]]]:
    """Greedy-decode every receipt of ``dataset`` and score it.

    Returns:
        ``(scores, pairs)``: :func:`~vitcourse.ocr.receipts.receipt_scores` and the
        ``(true, predicted)`` texts.
    """
    model.eval()
    tokenizer = dataset.tokenizer
    pairs = []
    for images, tokens in DataLoader(dataset, batch_size=batch_size):
        predicted = model.generate(images)
        pairs += [
            (tokenizer.decode(t), tokenizer.decode(p))
            for t, p in zip(tokens, predicted)
        ]
    return receipt_scores([t for t, _ in pairs], [p for _, p in pairs]), pairs


def _lr(step: int, steps: int, warmup: int, lr: float) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))


def train(
    steps: int = 2000,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    warmup: int = 200,
    seed: int = 0,
    val_size: int = 64,
    test_size: int = 500,
    log_every: int = 100,
    eval_every: int = 200,
    overrides: dict | None = None,
    init: str | None = None,
) -> tuple[Donut, dict]:
    """Train and evaluate; returns the model and a record of the run.

    ``overrides`` change fields of the preset's :class:`~vitcourse.models.donut.DonutConfig`;
    ``init`` names a registered checkpoint to start from (default: from scratch).
    """
    seed_everything(seed)
    overrides = dict(overrides or {})
    model = create_model(MODEL, **overrides)
    if init is not None:
        from ..checkpoints import load

        model.load_state_dict(load(init).state_dict())
    config = model.config
    data = ReceiptDataset(
        "train",
        steps * batch_size,
        seed=seed,
        img_size=config.img_size,
        max_len=config.max_len,
    )
    if len(data.tokenizer) != config.vocab_size:
        raise ValueError(
            f"the tokenizer has {len(data.tokenizer)} tokens but the model {config.vocab_size}"
        )
    val = ReceiptDataset(
        "val", val_size, seed=seed, img_size=config.img_size, max_len=config.max_len
    )
    # no weight decay on biases, norms and learned positions (pos_embed, memory_pos)
    positions = ("pos_embed", "memory_pos")
    decay = [
        p for n, p in model.named_parameters() if p.ndim >= 2 and n not in positions
    ]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or n in positions]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )
    loader = DataLoader(
        data, batch_size=batch_size, shuffle=False
    )  # every receipt is new: no need to shuffle
    curve, evals = [], []
    start, running = time.perf_counter(), 0.0
    model.train()
    for step, (images, tokens) in enumerate(loader):
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, steps, warmup, lr)
        tokens = tokens[
            :, : int((tokens != config.pad_id).sum(1).max())
        ]  # drop all-pad columns
        logits = model(images, tokens[:, :-1])  # teacher forcing: the true prefix in
        loss = donut_loss(logits, tokens[:, 1:], config.pad_id)  # the next token out
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running += loss.item()
        if (step + 1) % log_every == 0:
            curve.append({"step": step + 1, "loss": round(running / log_every, 4)})
            running = 0.0
            elapsed = time.perf_counter() - start
            print(
                f"step {step + 1}/{steps}  loss {curve[-1]['loss']:.4f}  {elapsed / 60:.1f} min",
                flush=True,
            )
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            scores, _ = evaluate(model, val)
            evals.append(
                {"step": step + 1, **{k: round(v, 4) for k, v in scores.items()}}
            )
            print(f"  val {evals[-1]}", flush=True)
            model.train()
    train_seconds = time.perf_counter() - start
    test = ReceiptDataset(
        "test", test_size, seed=seed, img_size=config.img_size, max_len=config.max_len
    )
    scores, pairs = evaluate(model, test)
    record = {
        "model": MODEL,
        "overrides": overrides,
        "config": asdict(config),
        "recipe": {
            "steps": steps, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "warmup": warmup,
            "seed": seed, "init": init, "optimizer": "AdamW, linear warm-up, cosine decay, gradient clipping at 1",
            "loss": "cross-entropy of the next token, teacher forcing, padding ignored",
        },
        "data": {
            "name": "generated receipts (vitcourse.data.text.generate_receipt)",
            "train_receipts": steps * batch_size, "val_receipts": val_size, "test_receipts": test_size,
            "seeds": f"(seed={seed}, split, index); train, val and test use split ids 0, 1, 2",
        },
        "curve": curve,
        "val": evals,
        "test": {k: round(v, 4) for k, v in scores.items()},
        "test_examples": [{"true": t, "predicted": p} for t, p in pairs[:20]],
        "train_seconds": round(train_seconds, 1),
    }  # fmt: skip
    return model, record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--init", default=None, help="a registered checkpoint to continue from"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a DonutConfig field of the preset (VALUE as JSON), e.g. encoder_depths=[3]",
    )
    parser.add_argument(
        "--root",
        default=None,
        help="checkpoint registry folder (default: the package's)",
    )
    parser.add_argument(
        "--results",
        default=None,
        help="folder for train_donut.json (default: vitcourse/ocr/results)",
    )
    parser.add_argument(
        "--note",
        default=None,
        help="a remark for the provenance (e.g. which code it ran)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start, commit = time.perf_counter(), git_commit()  # the code this run trains with
    overrides = {
        key: json.loads(value) for key, value in (s.split("=", 1) for s in args.set)
    }
    model, record = train(
        args.steps,
        args.batch_size,
        args.lr,
        seed=args.seed,
        test_size=args.test_size,
        overrides=overrides,
        init=args.init,
    )
    from ..checkpoints import register

    command = "OMP_NUM_THREADS=1 nice -n 10 python -m vitcourse.scripts.train_donut"
    if args.steps != 2000 or args.batch_size != 16 or args.lr != 1e-3 or args.seed != 0:
        command += f" --steps {args.steps} --batch-size {args.batch_size} --lr {args.lr} --seed {args.seed}"
    command += "".join(f" --set {s}" for s in args.set)
    if args.init:
        command += f" --init {args.init}"
    register(
        "donut_receipts",
        model,
        MODEL,
        overrides,
        root=args.root,
        description="tiny Donut (Swin encoder + decoder with cross-attention) reading generated receipts into JSON",
        data=record["data"],
        recipe=record["recipe"],
        metrics={f"test_{k}": v for k, v in record["test"].items()},
        build=command,
    )
    extra = {"note": args.note} if args.note else {}
    seconds = time.perf_counter() - start
    record["provenance"] = provenance(
        command, seconds, commit, threads=args.threads, **extra
    )
    path = save("train_donut", record, args.results)
    print(f"test: {record['test']}\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
