"""Our GPT-2 against Hugging Face's ``GPT2LMHeadModel``, and generation with vs without the KV cache.

1. Builds Hugging Face's GPT-2 small (124 M parameters) with random weights, converts it
   to ours (:func:`vitcourse.hub.gpt_from_hf`) and checks that both give the same logits:
   the timings compare one function, two implementations. Dropout is 0 in both, so a
   training step measures the same arithmetic.
2. Times the forward pass (inference) and one training step (forward, next-token
   cross-entropy, backward, AdamW) for each ``--shapes`` ``BxN`` (batch × tokens),
   float32, interleaving the two models in every repetition (:mod:`timing`); prints the
   paired ratio ours / Hugging Face (target: at most 1.05).
3. Times greedy generation of ``--new-tokens`` tokens after a ``--prompt``-token prompt:
   ours with the KV cache, ours without it (every step recomputes the whole window),
   and Hugging Face's ``generate`` (with its cache), checking that all three produce the
   same tokens; prints the speed-up of the cache.

Writes ``benchmarks/results/gpt.json``, which chapter 4 reads.

Usage::

    python benchmarks/bench_gpt.py                      # a few minutes on 2 cores
    python benchmarks/bench_gpt.py --shapes 1x64 --reps 3 --new-tokens 16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from timing import load_average, machine_info, paired_ratio, time_interleaved

from vitcourse.hub import gpt_from_hf

RESULTS = Path(__file__).parent / "results" / "gpt.json"
TARGET = 1.05


def build_models(seed: int = 0) -> dict[str, torch.nn.Module]:
    """Hugging Face's GPT-2 small with random weights and no dropout, and ours with the same weights."""
    torch.manual_seed(seed)
    config = transformers.GPT2Config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    return {"ours": gpt_from_hf(hf), "hf": hf}


def logits(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    out = model(tokens)
    return out if isinstance(out, torch.Tensor) else out.logits


def make_step(model: torch.nn.Module, task: str, tokens: torch.Tensor):
    """A closure: one forward pass (inference mode) or one training step with ``L1``."""
    if task == "forward":
        model.eval()

        def forward() -> None:
            with torch.inference_mode():
                logits(model, tokens)

        return forward
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def train() -> None:
        optimizer.zero_grad(set_to_none=True)
        out = logits(model, tokens)
        F.cross_entropy(out[:, :-1].flatten(0, 1), tokens[:, 1:].flatten()).backward()
        optimizer.step()

    return train


def run_case(models, shape: str, task: str, reps: int) -> dict:
    batch, length = map(int, shape.split("x"))
    tokens = torch.randint(0, 50257, (batch, length), generator=torch.Generator().manual_seed(0))
    steps = {name: make_step(model, task, tokens) for name, model in models.items()}
    load = load_average()
    times = time_interleaved(steps, reps)
    return {
        "shape": shape,
        "task": task,
        "reps": reps,
        "median_s": {name: statistics.median(t) for name, t in times.items()},
        "ratio_ours_over_hf": paired_ratio(times, "ours", "hf"),
        "load_average_before": load,
    }


def run_generation(models, prompt_len: int, new_tokens: int, reps: int) -> dict:
    ours, hf = models["ours"].eval(), models["hf"].eval()
    prompt = torch.randint(0, 50257, (1, prompt_len), generator=torch.Generator().manual_seed(1))
    hf.generation_config.eos_token_id = None  # never stop early
    outputs = {}

    def cached() -> None:
        outputs["cached"] = ours.generate(prompt, new_tokens, temperature=0, use_cache=True)

    def uncached() -> None:
        outputs["uncached"] = ours.generate(prompt, new_tokens, temperature=0, use_cache=False)

    def hugging_face() -> None:
        with torch.inference_mode():
            outputs["hf"] = hf.generate(prompt, max_new_tokens=new_tokens, do_sample=False, pad_token_id=0)

    times = time_interleaved({"cached": cached, "uncached": uncached, "hf": hugging_face}, reps, warmup=1)
    same = torch.equal(outputs["cached"], outputs["uncached"]) and torch.equal(outputs["cached"], outputs["hf"])
    return {
        "prompt_tokens": prompt_len,
        "new_tokens": new_tokens,
        "reps": reps,
        "median_s": {name: statistics.median(t) for name, t in times.items()},
        "speedup_cache": paired_ratio(times, "uncached", "cached"),
        "ratio_ours_cached_over_hf": paired_ratio(times, "cached", "hf"),
        "same_tokens": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="1x128,4x256", help="batch x tokens, comma-separated")
    parser.add_argument("--tasks", default="forward,train")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--gen-reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="how the run was made (machine state, options)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    models = build_models()
    check = (logits(models["ours"], torch.arange(64)[None]) - logits(models["hf"], torch.arange(64)[None]))
    max_diff = check.abs().max().item()
    print(f"same weights: max |logits ours - hf| = {max_diff:.2e}")
    if max_diff > 1e-4:
        raise SystemExit("the two models disagree; their timings would not compare the same function")
    results = {
        "machine": machine_info(transformers=transformers.__version__),
        "model": "GPT-2 small (124 M), random weights, dropout 0",
        "dtype": "float32",
        "threads": args.threads,
        "hf_attn_implementation": models["hf"].config._attn_implementation,
        "max_abs_logit_diff": max_diff,
        "target": TARGET,
        "notes": args.note,
        "cases": [],
    }
    print(f"{'shape':>7} {'task':>8} {'ours s':>8} {'hf s':>8} {'ours/hf':>8}")
    for shape in args.shapes.split(","):
        for task in args.tasks.split(","):
            case = run_case(models, shape, task, args.reps)
            results["cases"].append(case)
            m = case["median_s"]
            print(f"{shape:>7} {task:>8} {m['ours']:8.3f} {m['hf']:8.3f} {case['ratio_ours_over_hf']:8.3f}", flush=True)
    generation = run_generation(models, args.prompt, args.new_tokens, args.gen_reps)
    results["generation"] = generation
    m = generation["median_s"]
    print(f"generation of {args.new_tokens} tokens: cached {m['cached']:.2f} s, uncached {m['uncached']:.2f} s "
          f"(cache speed-up {generation['speedup_cache']:.2f}x), HF {m['hf']:.2f} s; same tokens: "
          f"{generation['same_tokens']}")
    worst = max(case["ratio_ours_over_hf"] for case in results["cases"])
    results["summary"] = {"max_ratio_ours_over_hf": worst, "within_target": worst <= TARGET,
                          "cache_speedup": generation["speedup_cache"]}
    print(f"ours / Hugging Face: max {worst:.3f} (target <= {TARGET})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
