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
import shlex
import time
from dataclasses import asdict

import torch
from torch.utils.data import DataLoader

from ..models import create_model
from ..models.donut import Donut, attention_guide_loss, donut_loss
from ..ocr.receipts import ReceiptDataset, receipt_scores
from ..ocr.results import git_commit, provenance, save
from ..runtime import seed_everything

__all__ = ["evaluate", "main", "train"]

MODEL = "donut_receipts"


@torch.no_grad()
def evaluate(model: Donut, dataset: ReceiptDataset, batch_size: int = 32) -> tuple[dict, list[tuple[str, str]]]:
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
        pairs += [(tokenizer.decode(t), tokenizer.decode(p)) for t, p in zip(tokens, predicted)]
    return receipt_scores([t for t, _ in pairs], [p for _, p in pairs]), pairs


def _lr(step: int, steps: int, warmup: int, lr: float) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))


def _optimizer(model: Donut, lr: float, weight_decay: float) -> torch.optim.AdamW:
    # no weight decay on biases, norms and learned positions (pos_embed, memory_pos)
    positions = ("pos_embed", "memory_pos")
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and n not in positions]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or n in positions]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
    )


def _stage(
    model: Donut,
    data: ReceiptDataset,
    val: ReceiptDataset,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    warmup: int,
    log_every: int,
    eval_every: int,
    label: str = "",
    guide: float = 0.0,
) -> tuple[list[dict], list[dict], float]:
    """One stage of training with teacher forcing; returns the loss curve, the validations and the seconds.

    With ``guide > 0`` the data must give each token's box (``ReceiptDataset(boxes=True)``)
    and the loss adds ``guide`` times :func:`~vitcourse.models.donut.attention_guide_loss`.
    """
    config = model.config
    optimizer = _optimizer(model, lr, weight_decay)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)  # every receipt is new: no need to shuffle
    curve, evals = [], []
    start, running, guiding = time.perf_counter(), 0.0, 0.0
    model.train()
    grid = config.img_size // config.patch_size // 2 ** (len(config.encoder_depths) - 1)
    for step, batch in enumerate(loader):
        images, tokens = batch[0], batch[1]
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, steps, warmup, lr)
        length = int((tokens != config.pad_id).sum(1).max())
        tokens = tokens[:, :length]  # drop all-pad columns
        if guide:  # the true prefix in, the next token out, and where it is printed
            logits, weights = model.forward_with_attention(images, tokens[:, :-1])
            guide_loss = attention_guide_loss(weights, batch[2][:, 1:length], config.img_size, grid)
            guiding += guide_loss.item()
        else:
            logits = model(images, tokens[:, :-1])  # teacher forcing: the true prefix in
            guide_loss = 0.0
        loss = donut_loss(logits, tokens[:, 1:], config.pad_id)  # the next token out
        running += loss.item()
        loss = loss + guide * guide_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % log_every == 0:
            curve.append({"step": step + 1, "loss": round(running / log_every, 4)})
            if guide:
                curve[-1]["guide_loss"] = round(guiding / log_every, 4)
            running = guiding = 0.0
            elapsed = time.perf_counter() - start
            guided = f"  guide {curve[-1]['guide_loss']:.4f}" if guide else ""
            print(
                f"{label}step {step + 1}/{steps}  loss {curve[-1]['loss']:.4f}{guided}  {elapsed / 60:.1f} min",
                flush=True,
            )
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            scores, _ = evaluate(model, val)
            evals.append({"step": step + 1, **{k: round(v, 4) for k, v in scores.items()}})
            print(f"  {label}val {evals[-1]}", flush=True)
            model.train()
    return curve, evals, time.perf_counter() - start


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
    pretrain_steps: int = 0,
    pretrain_lr: float | None = None,
    pretrain_task: str = "read",
    pretrain_words: str = "random",
    pretrain_guide: float = 0.0,
    guide: float = 0.0,
) -> tuple[Donut, dict]:
    """Train and evaluate; returns the model and a record of the run.

    ``overrides`` change fields of the preset's :class:`~vitcourse.models.donut.DonutConfig`;
    ``init`` names a registered checkpoint to start from (default: from scratch).

    With ``pretrain_steps``, a first stage teaches the model to *read*, as Donut's
    pre-training on SynthDoG does: receipts whose names are made-up letter strings
    (``pretrain_words="random"``: no word can be guessed, every letter must be read
    from the image) and, as the target, all their text line by line
    (``pretrain_task="read"``). The second stage (``steps``) fine-tunes the same
    weights, with a fresh optimizer and schedule, on the task: the JSON of receipts
    with Spanish names.

    ``pretrain_guide`` and ``guide`` (for each stage) add that weight times
    :func:`~vitcourse.models.donut.attention_guide_loss`: the last decoder block's
    cross-attention is told which cells of the image hold the character it is about to
    write (the generator knows where it printed each one).
    """
    seed_everything(seed)
    overrides = dict(overrides or {})
    model = create_model(MODEL, **overrides)
    if init is not None:
        from ..checkpoints import load

        model.load_state_dict(load(init).state_dict())
    config = model.config
    sizes = {"img_size": config.img_size, "max_len": config.max_len}
    data = ReceiptDataset("train", steps * batch_size, seed=seed, **sizes, boxes=guide > 0)
    if len(data.tokenizer) != config.vocab_size:
        raise ValueError(f"the tokenizer has {len(data.tokenizer)} tokens but the model {config.vocab_size}")
    val = ReceiptDataset("val", val_size, seed=seed, **sizes)
    pretrain = None
    if pretrain_steps:
        kind = {"task": pretrain_task, "words": pretrain_words}
        pre_lr = lr if pretrain_lr is None else pretrain_lr
        curve, evals, seconds = _stage(
            model,
            ReceiptDataset("train", pretrain_steps * batch_size, seed=seed, **sizes, **kind, boxes=pretrain_guide > 0),
            ReceiptDataset("val", val_size, seed=seed, **sizes, **kind),
            pretrain_steps, batch_size, pre_lr, weight_decay, warmup, log_every, eval_every,
            label="pretrain ", guide=pretrain_guide,
        )  # fmt: skip
        pretrain = {
            "steps": pretrain_steps, "lr": pre_lr, **kind, "guide": pretrain_guide,
            "receipts": pretrain_steps * batch_size,
            "curve": curve, "val": evals, "seconds": round(seconds, 1),
        }  # fmt: skip
    curve, evals, seconds = _stage(
        model, data, val, steps, batch_size, lr, weight_decay, warmup, log_every, eval_every, guide=guide
    )
    train_seconds = seconds + (pretrain["seconds"] if pretrain else 0.0)
    test = ReceiptDataset("test", test_size, seed=seed, **sizes)
    scores, pairs = evaluate(model, test)
    recipe = {
        "steps": steps, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "warmup": warmup,
        "seed": seed, "init": init, "optimizer": "AdamW, linear warm-up, cosine decay, gradient clipping at 1",
        "loss": "cross-entropy of the next token, teacher forcing, padding ignored",
        "guide": guide,
    }  # fmt: skip
    if pretrain:
        recipe["pretrain"] = {k: pretrain[k] for k in ("steps", "lr", "task", "words", "guide", "receipts")} | {
            "what": "stage 1, before the steps above: read all the text of receipts with made-up names, "
            "line by line (lines separated by <sep/>), from scratch; stage 2 fine-tunes on the JSON",
        }
    if guide or pretrain_guide:
        recipe["guide_loss"] = (
            "guide x -log(share of the last decoder block's cross-attention, heads averaged, on the memory cells "
            "that the box of the next character overlaps), positions whose next token is printed"
        )
    record = {
        "model": MODEL,
        "overrides": overrides,
        "config": asdict(config),
        "recipe": recipe,
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
    if pretrain:
        record["pretrain"] = pretrain
        record["data"]["pretrain_receipts"] = pretrain["receipts"]
    return model, record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pretrain-steps",
        type=int,
        default=0,
        help="steps of a first stage that reads the text of receipts with made-up names",
    )
    parser.add_argument("--pretrain-lr", type=float, default=None, help="default: --lr")
    parser.add_argument(
        "--pretrain-guide", type=float, default=0.0, help="weight of the attention guide in the first stage"
    )
    parser.add_argument("--guide", type=float, default=0.0, help="weight of the attention guide in the task stage")
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=200, help="steps between validations")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--init", default=None, help="a registered checkpoint to continue from")
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
    overrides = {key: json.loads(value) for key, value in (s.split("=", 1) for s in args.set)}
    model, record = train(
        args.steps,
        args.batch_size,
        args.lr,
        seed=args.seed,
        test_size=args.test_size,
        eval_every=args.eval_every,
        overrides=overrides,
        init=args.init,
        pretrain_steps=args.pretrain_steps,
        pretrain_lr=args.pretrain_lr,
        pretrain_guide=args.pretrain_guide,
        guide=args.guide,
    )
    from ..checkpoints import register

    command = "OMP_NUM_THREADS=1 nice -n 10 python -m vitcourse.scripts.train_donut"
    if args.steps != 2000 or args.batch_size != 16 or args.lr != 1e-3 or args.seed != 0:
        command += f" --steps {args.steps} --batch-size {args.batch_size} --lr {args.lr} --seed {args.seed}"
    if args.pretrain_steps:
        command += f" --pretrain-steps {args.pretrain_steps}"
        if args.pretrain_lr is not None:
            command += f" --pretrain-lr {args.pretrain_lr}"
        if args.pretrain_guide:
            command += f" --pretrain-guide {args.pretrain_guide}"
    if args.guide:
        command += f" --guide {args.guide}"
    if args.eval_every != 200:
        command += f" --eval-every {args.eval_every}"
    command += "".join(f" --set {shlex.quote(s)}" for s in args.set)
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
    record["provenance"] = provenance(command, seconds, commit, threads=args.threads, **extra)
    path = save("train_donut", record, args.results)
    print(f"test: {record['test']}\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
