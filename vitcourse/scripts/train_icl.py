"""Train a tiny GPT on demonstrations of many small tasks; measure zero-, one- and few-shot.

    python -m vitcourse.scripts.train_icl            # a few minutes on 1 CPU thread

Every training sequence is a task description and ``--demos`` noisy demonstrations of
one task (:mod:`vitcourse.text.icl`); the model is trained with ``L1`` on them, like any
language model. Then, on tasks whose secret it never saw, it is prompted with k = 0, 1,
2, 4, 8 demonstrations and its greedy answers are scored: no gradient update.
Writes the checkpoint ``gpt_icl`` and ``vitcourse/text/results/train_icl.json``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from ..checkpoints import register
from ..models import count_parameters, create_model
from ..text.icl import SOURCE_WORDS, IclTask, IclVocab, evaluate_icl, sample_sequence, split_secrets
from ..text.results import provenance, save

CHECKPOINT = "gpt_icl"
SHOTS = (0, 1, 2, 4, 8)


def batch_of_sequences(rng, secrets, vocab: IclVocab, args) -> torch.Tensor:
    """``(B, L)`` token ids of training sequences, right-padded with 0 (ignored by the loss)."""
    texts = [sample_sequence(rng, secrets, vocab.source, args.demos, args.noise) for _ in range(args.batch_size)]
    ids = [vocab.encode(t) for t in texts]
    width = max(map(len, ids))
    return torch.tensor([x + [0] * (width - len(x)) for x in ids])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=0.3, help="share of demonstrations showing a random answer")
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--words", type=int, default=len(SOURCE_WORDS), help="source words (the first ones)")
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--eval-prompts", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-register", action="store_true")
    parser.add_argument("--results", default="train_icl",
                        help="results name; another seed: --no-register --results train_icl_seed1")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    vocab = IclVocab(SOURCE_WORDS[: args.words])
    train_secrets, new_secrets = split_secrets(seed=args.seed)
    new_tasks = [IclTask("adivinar", secret) for secret in new_secrets]  # never trained on
    train_tasks = [IclTask("adivinar", secret) for secret in train_secrets]
    seq_len = len(vocab.encode(sample_sequence(np.random.default_rng(0), train_secrets, vocab.source, args.demos,
                                               copy_share=0.0))) + 8
    config = {"vocab_size": len(vocab), "max_seq_len": seq_len, "embed_dim": args.embed_dim, "depth": args.depth,
              "num_heads": args.num_heads, "dropout": 0.0, "attn_dropout": 0.0}
    torch.manual_seed(args.seed)
    model = create_model("gpt2", **config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.steps, pct_start=0.05)
    rng = np.random.default_rng(args.seed)
    history = {"step": [], "loss": [], "new_tasks_4shot": []}
    running = []
    for step in range(1, args.steps + 1):
        model.train()
        batch = batch_of_sequences(rng, train_secrets, vocab, args)
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
            probe = evaluate_icl(model, vocab, new_tasks, (4,), 100, args.noise, seed=1)[4]["exact"]
            history["step"].append(step)
            history["loss"].append(float(np.mean(running)))
            history["new_tasks_4shot"].append(probe)
            running = []
            print(f"step {step:5d}  loss {history['loss'][-1]:.3f}  4-shot on new tasks {probe:.2f}  "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    model.eval()
    held_out = evaluate_icl(model, vocab, new_tasks, SHOTS, args.eval_prompts, args.noise, seed=123)
    seen = evaluate_icl(model, vocab, train_tasks, SHOTS, args.eval_prompts, args.noise, seed=123)
    copy = evaluate_icl(model, vocab, [IclTask("copiar")], SHOTS, args.eval_prompts, args.noise, seed=123)
    for k in SHOTS:
        print(f"k={k}: new secrets {held_out[k]['exact']:.3f} (majority of the demos right: "
              f"{held_out[k]['majority']:.3f}); training secrets {seen[k]['exact']:.3f}; copiar {copy[k]['exact']:.3f}")
    seconds = time.perf_counter() - start
    command = ("python -m vitcourse.scripts.train_icl " + " ".join(sys.argv[1:] if argv is None else argv)).strip()
    metrics = {f"held_out_{k}shot": round(held_out[k]["exact"], 4) for k in SHOTS}
    recipe = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "demos": args.demos,
              "source_words": list(vocab.source), "noise": args.noise, "train_secrets": len(train_secrets),
              "new_secrets": len(new_secrets), "copy_share": 0.2, "seed": args.seed}
    if not args.no_register:
        register(CHECKPOINT, model, "gpt2", config, data={"name": "icl_tasks", "train_secrets": len(train_secrets),
                 "new_secrets": len(new_secrets)},
                 recipe=recipe, metrics=metrics, build=command)
    results = {
        "config": config,
        "num_parameters": count_parameters(model),
        "recipe": recipe,
        "shots": list(SHOTS),
        "held_out": {str(k): v for k, v in held_out.items()},
        "training_tasks": {str(k): v for k, v in seen.items()},
        "copy_task": {str(k): v for k, v in copy.items()},
        "eval_prompts": args.eval_prompts,
        "history": history,
        "provenance": provenance(command, [args.seed], seconds, threads=args.threads),
    }
    if not args.no_register or args.results != "train_icl":
        save(args.results, results)
    return results


if __name__ == "__main__":
    main()
