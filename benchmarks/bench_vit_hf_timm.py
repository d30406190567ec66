"""Our ViT-B/16 against Hugging Face's and timm's, with the same weights, on the CPU.

1. Builds timm's ``vit_base_patch16_224``, converts it to ours
   (:func:`vitcourse.hub.vit_from_timm`) and ours to Hugging Face's
   ``ViTForImageClassification`` (:func:`vitcourse.hub.vit_to_hf`), and checks that the
   three give the same logits: the timings compare one function, three implementations.
2. For batch sizes 1 and 32, times the forward pass (inference) and one training step
   (forward, cross-entropy, backward, AdamW), float32, a fixed number of threads,
   interleaving the three models and a plain ``torch.matmul`` in every repetition
   (:mod:`timing`).
3. Counts each step's floating-point operations (``torch.utils.flop_counter``) and turns
   the medians into GFLOP/s; the matmul of ViT-B's largest layer shape
   (``(B·197, 768) @ (768, 3072)``), timed in the same repetitions, is the practical
   ceiling of this machine at this moment, and each model's share of it is printed.
4. Prints the ratios ours / Hugging Face, ours / timm and ours / the faster of the two
   (target: at most 1.05), and writes everything, with the machine, the date and the
   load average, to ``benchmarks/results/vit_hf_timm.json``, which the book's
   benchmark page reads.

Usage::

    python benchmarks/bench_vit_hf_timm.py               # the full run (many minutes on 2 cores)
    python benchmarks/bench_vit_hf_timm.py --reps-scale 0.5 --batch-sizes 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
import transformers
from timing import load_average, logits_of, machine_info, make_step, paired_ratio, time_interleaved
from torch.utils.flop_counter import FlopCounterMode

from vitcourse.hub import vit_from_timm, vit_to_hf

RESULTS = Path(__file__).parent / "results" / "vit_hf_timm.json"
MODELS = ("ours", "hf", "timm")
TARGET = 1.05


def build_models(seed: int = 0) -> dict[str, torch.nn.Module]:
    """timm's ViT-B/16 with random weights, and the same weights in ours and in Hugging Face's."""
    torch.manual_seed(seed)
    theirs = timm.create_model("vit_base_patch16_224")
    ours = vit_from_timm(theirs)
    return {"ours": ours, "hf": vit_to_hf(ours), "timm": theirs}


@torch.no_grad()
def check_same_logits(models: dict[str, torch.nn.Module], images: torch.Tensor) -> dict[str, float]:
    """Max abs difference of each model's logits from ours (eval mode)."""
    logits = {name: logits_of(model.eval()(images)) for name, model in models.items()}
    return {name: (logits[name] - logits["ours"]).abs().max().item() for name in models if name != "ours"}


def step_flops(model: torch.nn.Module, task: str, images: torch.Tensor, labels: torch.Tensor) -> int:
    """Floating-point operations of one step (multiply-add = 2): forward, or forward and backward."""
    counter = FlopCounterMode(display=False)
    with counter:
        if task == "forward":
            with torch.no_grad():
                model.eval()(images)
        else:
            F.cross_entropy(logits_of(model.train()(images)), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def matmul_step(batch_size: int, task: str):
    """The ceiling: ``(B·197, 768) @ (768, 3072)`` (ViT-B's MLP), and for training also the
    two products of its backward pass, so that it does 3× the work as training does."""
    a, b = torch.randn(batch_size * 197, 768), torch.randn(768, 3072)
    grad = torch.randn(batch_size * 197, 3072)
    flops = 2 * a.shape[0] * a.shape[1] * b.shape[1]

    def forward() -> None:
        torch.matmul(a, b)

    def train() -> None:
        torch.matmul(a, b), torch.matmul(grad, b.T), torch.matmul(a.T, grad)

    return (forward, flops) if task == "forward" else (train, 3 * flops)


def repetitions(batch_size: int, task: str, scale: float) -> int:
    """Few repetitions for the slow cases: a ViT-B training step at batch 32 takes tens of seconds on 2 cores."""
    reps = {(1, "forward"): 20, (1, "train"): 10, (32, "forward"): 5, (32, "train"): 3}.get((batch_size, task), 5)
    return max(3, round(reps * scale))


HEADER = (
    f"{'batch':>5}{'task':>8}{'thr':>4}{'reps':>5}{'ours ms':>10}{'HF ms':>10}{'timm ms':>10}"
    f"{'ours/HF':>9}{'ours/timm':>10}{'ours/best':>10}{'GFLOP/s':>9}{'matmul':>8}{'share':>7}{'load':>6}"
)


def run_case(models, batch_size: int, task: str, threads: int, reps: int) -> dict:
    """Time one (batch size, task, threads) case; return its record."""
    torch.set_num_threads(threads)
    images = torch.randn(batch_size, 3, 224, 224)
    labels = torch.randint(0, 1000, (batch_size,))
    flops = {name: step_flops(model, task, images, labels) for name, model in models.items()}
    matmul, matmul_flops = matmul_step(batch_size, task)
    steps = {name: make_step(model, task, images, labels) for name, model in models.items()}
    steps["matmul"] = matmul
    load_before = load_average()
    times = time_interleaved(steps, reps, warmup=1 if batch_size > 1 else 2)
    load_after = load_average()
    median = {name: statistics.median(values) for name, values in times.items()}
    faster = min(median["hf"], median["timm"])
    gflops = {name: flops[name] / median[name] / 1e9 for name in models}
    matmul_gflops = matmul_flops / median["matmul"] / 1e9
    return {
        "batch_size": batch_size,
        "task": task,
        "threads": threads,
        "reps": reps,
        "median_s": median,
        "times_s": times,
        "ratio": {"ours/hf": median["ours"] / median["hf"], "ours/timm": median["ours"] / median["timm"],
                  "ours/faster": median["ours"] / faster},  # fmt: skip
        "paired_ratio": {"ours/hf": paired_ratio(times, "ours", "hf"),
                         "ours/timm": paired_ratio(times, "ours", "timm")},  # fmt: skip
        "gflop_per_step": {name: value / 1e9 for name, value in flops.items()},
        "gflops": gflops,
        "matmul_gflops": matmul_gflops,
        "fraction_of_matmul": {name: value / matmul_gflops for name, value in gflops.items()},
        "load_average_1min": [load_before, load_after],
    }


def row(case: dict) -> str:
    m, r = case["median_s"], case["ratio"]
    return (
        f"{case['batch_size']:>5}{case['task']:>8}{case['threads']:>4}{case['reps']:>5}{m['ours'] * 1e3:>10.1f}"
        f"{m['hf'] * 1e3:>10.1f}{m['timm'] * 1e3:>10.1f}{r['ours/hf']:>9.3f}{r['ours/timm']:>10.3f}"
        f"{r['ours/faster']:>10.3f}{case['gflops']['ours']:>9.1f}{case['matmul_gflops']:>8.1f}"
        f"{case['fraction_of_matmul']['ours']:>7.2f}{max(case['load_average_1min']):>6.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--tasks", default="forward,train")
    parser.add_argument("--threads", default=str(os.cpu_count()), help="torch.set_num_threads values, e.g. 1,2")
    parser.add_argument("--reps-scale", type=float, default=1.0, help="multiply the number of repetitions")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="how the run was made (machine state, options), kept in the JSON")
    args = parser.parse_args()

    models = build_models()
    check = check_same_logits(models, torch.randn(2, 3, 224, 224))
    print(f"same weights: max |logits - ours| = {check}")
    if max(check.values()) > 1e-4:
        raise SystemExit("the three models disagree; their timings would not compare the same function")
    versions = {"timm": timm.__version__, "transformers": transformers.__version__}
    results = {
        "machine": machine_info(**versions),
        "model": "ViT-B/16 (vit_base_patch16_224), 224x224, 1000 classes",
        "dtype": "float32",
        "device": "cpu",
        "hf_attn_implementation": models["hf"].config._attn_implementation,
        "max_abs_logit_diff": check,
        "target": TARGET,
        "notes": args.note,
        "cases": [],
    }
    print(HEADER)
    for batch_size in map(int, args.batch_sizes.split(",")):
        for task in args.tasks.split(","):
            for threads in map(int, args.threads.split(",")):
                case = run_case(models, batch_size, task, threads, repetitions(batch_size, task, args.reps_scale))
                results["cases"].append(case)
                print(row(case), flush=True)
    worst = max(case["ratio"]["ours/faster"] for case in results["cases"])
    results["summary"] = {
        "max_ratio_ours_over_faster": worst,
        "median_ratio_ours_over_faster": statistics.median(c["ratio"]["ours/faster"] for c in results["cases"]),
        "within_target": worst <= TARGET,
    }
    print(f"\nours / the faster of HF and timm: max {worst:.3f} (target <= {TARGET}); GFLOP/s: ours, from "
          f"FlopCounterMode's count; matmul: (B*197, 768) @ (768, 3072) in the same repetitions; share: ours / matmul")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
