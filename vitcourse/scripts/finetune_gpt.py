"""Fine-tune the shipped Reina-Valera GPT with L2 and L3 = L2 + λ·L1; sweep λ over seeds.

    python -m vitcourse.scripts.finetune_gpt         # a few minutes on 1 CPU thread

Task: which of the Bible's six sections a verse comes from. For each seed, a small
labelled training set is drawn from the training chapters (``--per-class`` verses per
section) and a fixed test set from the held-out chapters (never seen in pretraining
either). Every λ of ``--lambdas`` fine-tunes the pretrained model from the same start;
``scratch`` trains the same architecture from random weights with ``L2``, and ``probe``
fits only the new head on frozen features (``L2`` on ``W_y`` alone).
Writes ``vitcourse/text/results/finetune_gpt.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from .. import checkpoints
from ..models import create_model
from ..text import SECTIONS, reina_valera, split_by_chapter
from ..text.lm import load_tokenizer
from ..text.results import provenance, save
from ..text.supervised import accuracy, encode_labelled, finetune, sample_by_section

CHECKPOINT = "gpt_reina_valera"


def pretrained_classifier(num_classes: int, dropout: float, pretrained: bool = True):
    """The shipped GPT with a new ``num_classes`` head (random when ``pretrained=False``)."""
    entry = checkpoints.info(CHECKPOINT)
    model = create_model(entry["model"], **{**entry["config"], "num_classes": num_classes,
                                            "dropout": dropout, "attn_dropout": dropout})
    if pretrained:
        from safetensors.torch import load_file

        state = load_file(str(checkpoints.verify(CHECKPOINT)))
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert set(missing) == {"head.weight", "head.bias"} and not unexpected, (missing, unexpected)
    return model


def run_seed(seed: int, args: argparse.Namespace) -> list[dict]:
    """Every setting for one seed: its labelled training draw, the same test set."""
    torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer(checkpoints.info(CHECKPOINT)["tokenizer"])
    max_len = checkpoints.info(CHECKPOINT)["config"]["max_seq_len"]
    train_verses, test_verses = split_by_chapter(reina_valera())
    test = encode_labelled(tokenizer, sample_by_section(test_verses, args.test_per_class, seed=1000), max_len)
    train = encode_labelled(tokenizer, sample_by_section(train_verses, args.per_class, seed=seed), max_len)
    settings = [("L3", lam, True) for lam in args.lambdas] + [("scratch", 0.0, False), ("probe", 0.0, True)]
    runs = []
    for kind, lam, pretrained in settings:
        torch.manual_seed(seed)
        model = pretrained_classifier(len(SECTIONS), args.dropout, pretrained)
        if kind == "probe":  # only W_y learns: the features stay those of pretraining
            for name, p in model.named_parameters():
                p.requires_grad = name.startswith("head.")
        t = time.perf_counter()
        log = finetune(model, train, lam, args.epochs, args.lr * (10 if kind == "probe" else 1), seed=seed)
        acc = accuracy(model, test)
        runs.append({"kind": kind, "lambda": lam, "seed": seed, "test_accuracy": acc,
                     "train_loss": log[-1], "seconds": round(time.perf_counter() - t, 1)})
        print(f"seed {seed}  {kind:7s} λ={lam:<4}  test accuracy {acc:.3f}  ({runs[-1]['seconds']} s)", flush=True)
    return runs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--test-per-class", type=int, default=150)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.5, 2.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1, help="threads per process")
    parser.add_argument("--workers", type=int, default=3, help="processes, one seed each")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    if args.workers > 1:  # one process per seed, each on one thread
        with ProcessPoolExecutor(args.workers) as pool:
            runs = [r for part in pool.map(run_seed, args.seeds, [args] * len(args.seeds)) for r in part]
    else:
        runs = [r for seed in args.seeds for r in run_seed(seed, args)]
    test_size = len(SECTIONS) * args.test_per_class

    summary = {}
    for kind, lam in sorted({(r["kind"], r["lambda"]) for r in runs}):
        accs = [r["test_accuracy"] for r in runs if r["kind"] == kind and r["lambda"] == lam]
        summary[f"{kind} λ={lam}"] = {"kind": kind, "lambda": lam, "mean": float(np.mean(accs)),
                                      "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                                      "min": min(accs), "max": max(accs), "n": len(accs)}
    seconds = time.perf_counter() - start
    command = ("python -m vitcourse.scripts.finetune_gpt " + " ".join(sys.argv[1:] if argv is None else argv)).strip()
    results = {
        "task": "section of the Bible (6 classes) from one verse",
        "classes": list(SECTIONS),
        "train_per_class": args.per_class,
        "test_size": test_size,
        "recipe": {"epochs": args.epochs, "lr": args.lr, "probe_lr": args.lr * 10, "batch_size": 16,
                   "dropout": args.dropout, "optimizer": "AdamW, weight decay 0.01, warm-up 10 % then linear decay"},
        "runs": runs,
        "summary": summary,
        "provenance": provenance(command, list(args.seeds), seconds, threads=args.threads, workers=args.workers),
    }
    save("finetune_gpt", results)
    return results


if __name__ == "__main__":
    main()
