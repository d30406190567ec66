"""Train the chapter's tiny GPT on the Reina-Valera 1909 (objective L1) and ship it.

    python -m vitcourse.scripts.train_gpt            # 1500 steps: minutes on a quiet CPU thread

1. Split the verses by chapter (every tenth chapter held out), train a byte-level BPE
   on the training verses (``vitcourse/text/tokenizers/reina_valera_bpe512.json``).
2. Fit unigram, bigram and trigram Kneser-Ney models on the training tokens and score
   them on exactly the held-out positions the GPT is scored on.
3. Train a GPT-2-shaped model (3 blocks, 128 dims, 128-token window) with ``L1``.
4. Register the checkpoint ``gpt_reina_valera`` (weights + card with the metrics) and
   write ``vitcourse/text/results/train_gpt.json`` (curves, baselines, samples,
   provenance).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from ..checkpoints import register
from ..models import count_parameters, create_model
from ..text import reina_valera, split_by_chapter
from ..text.bpe import train_bpe
from ..text.lm import TOKENIZER_DIR, encode_verses, evaluate_lm, load_tokenizer, target_mask, train_lm
from ..text.ngram import NGramLM
from ..text.results import provenance, save

CHECKPOINT = "gpt_reina_valera"
TOKENIZER = "reina_valera_bpe512"
PROMPTS = ("En el principio", "Y dijo Jesús", "Bienaventurados los")


def model_config(args: argparse.Namespace, vocab_size: int) -> dict:
    """The overrides of the ``gpt2`` preset that make the tiny model."""
    return {
        "vocab_size": vocab_size,
        "max_seq_len": args.seq_len,
        "embed_dim": args.embed_dim,
        "depth": args.depth,
        "num_heads": args.num_heads,
        "dropout": args.dropout,
        "attn_dropout": args.dropout,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--embed-dim", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--retrain-tokenizer", action="store_true")
    parser.add_argument("--no-register", action="store_true", help="measure only; ship nothing")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    train_verses, val_verses = split_by_chapter(reina_valera())
    path = TOKENIZER_DIR / f"{TOKENIZER}.json"
    if args.retrain_tokenizer or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        train_bpe((v.text for v in train_verses), args.vocab_size).save(str(path))
    tokenizer = load_tokenizer(TOKENIZER)
    vocab_size = tokenizer.get_vocab_size()
    train_stream, val_stream = encode_verses(tokenizer, train_verses), encode_verses(tokenizer, val_verses)
    print(f"{len(train_verses)} / {len(val_verses)} verses, {len(train_stream)} / {len(val_stream)} tokens")

    mask = target_mask(len(val_stream), args.seq_len)
    baselines = {}
    for order, name in ((1, "unigram"), (2, "bigram"), (3, "trigram")):
        lm = NGramLM(order, vocab_size).fit(train_stream)
        baselines[name] = lm.cross_entropy(val_stream, mask)
        print(f"{name}: {baselines[name]:.3f} nats/token, perplexity {math.exp(baselines[name]):.1f}")

    torch.manual_seed(args.seed)
    config = model_config(args, vocab_size)
    model = create_model("gpt2", **config)
    history = train_lm(
        model, train_stream, val_stream, steps=args.steps, seq_len=args.seq_len, batch_size=args.batch_size,
        lr=args.lr, seed=args.seed, eval_every=max(1, args.steps // 30),
    )
    val_loss = evaluate_lm(model, val_stream, args.seq_len)
    reduction = 1 - val_loss / baselines["bigram"]
    print(f"GPT: {val_loss:.3f} nats/token, perplexity {math.exp(val_loss):.1f}, {reduction:.1%} below the bigram")

    samples = {}
    for i, prompt in enumerate(PROMPTS):
        ids = torch.tensor([tokenizer.encode(prompt).ids])
        out = model.generate(ids, 60, temperature=0.8, top_k=40, generator=torch.Generator().manual_seed(i))
        samples[prompt] = tokenizer.decode(out[0].tolist())
    for text in samples.values():
        print("  ", text.replace("\n", " / "))

    metrics = {
        "val_loss": round(val_loss, 4),
        "val_perplexity": round(math.exp(val_loss), 2),
        "ngram_val_loss": {k: round(v, 4) for k, v in baselines.items()},
        "reduction_vs_bigram": round(reduction, 4),
    }
    recipe = {"steps": args.steps, "batch_size": args.batch_size, "seq_len": args.seq_len, "lr": args.lr,
              "optimizer": "AdamW(0.9, 0.98), weight decay 0.01 on matrices", "schedule": "warm-up 100, cosine",
              "seed": args.seed, "threads": args.threads}
    data = {"name": "reina_valera_1909", "split": "every 10th chapter held out", "tokenizer": TOKENIZER,
            "train_tokens": len(train_stream), "val_tokens": len(val_stream),
            "train_verses": len(train_verses), "val_verses": len(val_verses)}
    seconds = time.perf_counter() - start
    command = "python -m vitcourse.scripts.train_gpt " + " ".join(sys.argv[1:] if argv is None else argv)
    if not args.no_register:
        register(CHECKPOINT, model, "gpt2", config, data=data, recipe=recipe, metrics=metrics,
                 build=command.strip(), tokenizer=TOKENIZER)
    results = {
        "config": config,
        "num_parameters": count_parameters(model),
        "data": data,
        "recipe": recipe,
        "metrics": metrics,
        "history": {"steps": history.steps, "train_loss": history.train_loss, "val_loss": history.val_loss},
        "samples": samples,
        "provenance": provenance(command.strip(), [args.seed], seconds, threads=args.threads),
    }
    if not args.no_register:
        save("train_gpt", results)
    return results


if __name__ == "__main__":
    main()
