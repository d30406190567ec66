"""Train a tiny GPT on demonstrations of many small tasks; measure zero-, one- and few-shot.

    python -m vitcourse.scripts.train_icl            # a few minutes on 1 CPU thread

Every training sequence is a task description and ``--demos`` demonstrations of one
task (:mod:`vitcourse.text.icl`); the model is trained with ``L1`` on them, like any
language model. Then, on tasks whose substitution it never saw, it is prompted with
k = 0, 1, 2, 4, 8 demonstrations and its greedy answers are scored: no gradient update.
Writes the checkpoint ``gpt_icl`` and ``vitcourse/text/results/train_icl.json``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ..checkpoints import register
from ..models import count_parameters, create_model
from ..text.icl import IclVocab, evaluate_icl, sample_sequence, split_tasks
from ..text.results import provenance, save

CHECKPOINT = "gpt_icl"
SHOTS = (0, 1, 2, 4, 8)


def batch_of_sequences(rng, substitutions, vocab: IclVocab, args) -> torch.Tensor:
    """``(B, L)`` token ids of training sequences, right-padded with 0 (ignored by the loss)."""
    texts = [sample_sequence(rng, substitutions, vocab.alphabet, args.demos, args.word_len)
             for _ in range(args.batch_size)]
    ids = [vocab.encode(t) for t in texts]
    width = max(map(len, ids))
    return torch.tensor([x + [0] * (width - len(x)) for x in ids])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alphabet", default="abcdef")
    parser.add_argument("--word-len", type=int, default=2)
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--eval-prompts", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-register", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    vocab = IclVocab(args.alphabet)
    train_subs, test_subs = split_tasks(args.alphabet, seed=args.seed)
    seq_len = len(vocab.encode(sample_sequence(np.random.default_rng(0), train_subs, args.alphabet,
                                               args.demos, args.word_len))) + 8
    config = {"vocab_size": len(vocab), "max_seq_len": seq_len, "embed_dim": args.embed_dim, "depth": args.depth,
              "num_heads": args.num_heads, "dropout": 0.0, "attn_dropout": 0.0}
    torch.manual_seed(args.seed)
    model = create_model("gpt2", **config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.steps, pct_start=0.05)
    rng = np.random.default_rng(args.seed)
    history = {"step": [], "loss": [], "train_tasks_4shot": []}
    running = []
    for step in range(1, args.steps + 1):
        model.train()
        batch = batch_of_sequences(rng, train_subs, vocab, args)
        logits = model(batch[:, :-1])
        targets = batch[:, 1:].masked_fill(batch[:, 1:] == 0, -100)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running.append(loss.item())
        if step % max(1, args.steps // 20) == 0 or step == args.steps:
            probe = evaluate_icl(model, vocab, test_subs, (4,), 60, args.word_len, seed=1)[4]["exact"]
            history["step"].append(step)
            history["loss"].append(float(np.mean(running)))
            history["train_tasks_4shot"].append(probe)
            running = []
            print(f"step {step:5d}  loss {history['loss'][-1]:.3f}  4-shot on held-out tasks {probe:.2f}  "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    model.eval()
    held_out = evaluate_icl(model, vocab, test_subs, SHOTS, args.eval_prompts, args.word_len, seed=123)
    seen = evaluate_icl(model, vocab, train_subs, SHOTS, args.eval_prompts, args.word_len, seed=123)
    for k in SHOTS:
        print(f"k={k}: held-out tasks {held_out[k]['exact']:.3f} exact, {held_out[k]['letters']:.3f} letters; "
              f"training tasks {seen[k]['exact']:.3f}")
    seconds = time.perf_counter() - start
    command = ("python -m vitcourse.scripts.train_icl " + " ".join(argv or [])).strip()
    metrics = {f"held_out_{k}shot": round(held_out[k]["exact"], 4) for k in SHOTS}
    recipe = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "demos": args.demos,
              "word_len": args.word_len, "alphabet": args.alphabet, "seed": args.seed}
    if not args.no_register:
        register(CHECKPOINT, model, "gpt2", config, data={"name": "icl_tasks", "alphabet": args.alphabet,
                 "train_substitutions": len(train_subs), "held_out_substitutions": len(test_subs)},
                 recipe=recipe, metrics=metrics, build=command)
    results = {
        "config": config,
        "num_parameters": count_parameters(model),
        "recipe": recipe,
        "shots": list(SHOTS),
        "held_out": {str(k): v for k, v in held_out.items()},
        "training_tasks": {str(k): v for k, v in seen.items()},
        "eval_prompts": args.eval_prompts,
        "history": history,
        "provenance": provenance(command, [args.seed], seconds, threads=args.threads),
    }
    if not args.no_register:
        save("train_icl", results)
    return results


if __name__ == "__main__":
    main()
