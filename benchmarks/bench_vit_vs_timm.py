"""Our ViT against timm's, side by side, with the same weights, on the CPU.

For ViT-Ti/16, ViT-S/16 and ViT-B/16 this script

1. builds timm's model and ours, copies timm's weights into ours
   (:func:`vitcourse.models.state_dict_from_timm`) and checks that both compute the
   same logits and the same gradients (the comparison is only fair if they do);
   it also lists the ATen operators each runs for a forward and a backward pass: the
   two differ only in free view operations and in a few copies, so a ratio far from 1
   on a quiet machine would point at the kernels, not at the model code;
2. times, in one run and interleaved (ours, timm, timm, ours, …, so drifts in machine
   load hit both), the forward pass (inference) and one training step (forward,
   backward, AdamW step) at batch sizes 1 and 32, float32, a fixed number of threads;
3. prints the medians and the ratios ours/timm, and writes everything to
   ``benchmarks/results/vit_vs_timm.json``.

The target is a ratio at or below 1.05. Usage::

    python benchmarks/bench_vit_vs_timm.py              # the full run (minutes)
    python benchmarks/bench_vit_vs_timm.py --quick      # ViT-Ti only, few repetitions
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from timing import machine_info, make_step, paired_ratio, time_interleaved
from torch.utils._python_dispatch import TorchDispatchMode

from vitcourse.models import create_model, state_dict_from_timm

SIZES = {"tiny": "vit_tiny_patch16_224", "small": "vit_small_patch16_224", "base": "vit_base_patch16_224"}
RESULTS = Path(__file__).parent / "results" / "vit_vs_timm.json"


def repetitions(size: str, batch_size: int, task: str, scale: float) -> int:
    """Timed repetitions per model: many for cheap cases, few for ViT-B training at batch 32."""
    cost = {"tiny": 1, "small": 3, "base": 12}[size] * batch_size * (3 if task == "train" else 1)
    reps = 30 if cost <= 12 else 15 if cost <= 100 else 7 if cost <= 400 else 5
    return max(3, round(reps * scale))


def check_same_function(ours: torch.nn.Module, theirs: torch.nn.Module, images: torch.Tensor) -> dict:
    """Max abs difference of logits (eval) and of parameter gradients (one backward)."""
    ours.eval(), theirs.eval()
    with torch.no_grad():
        logit_diff = (ours(images) - theirs(images)).abs().max().item()
    labels = torch.arange(images.shape[0]) % 1000
    grads = []
    for model in (ours, theirs):
        model.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        grads.append({name: p.grad for name, p in model.named_parameters()})
    ours_grads = {name.replace("pos_embed.weight", "pos_embed"): g for name, g in grads[0].items()}
    grad_diff = max((ours_grads[name] - g).abs().max().item() for name, g in grads[1].items())
    for model in (ours, theirs):
        model.zero_grad(set_to_none=True)
    return {"max_abs_logit_diff": logit_diff, "max_abs_grad_diff": grad_diff}


# Operators that only describe a tensor differently (no arithmetic, no copy).
VIEW_OPS = {
    "aten.view", "aten._unsafe_view", "aten.transpose", "aten.permute", "aten.slice", "aten.split",
    "aten.unbind", "aten.select", "aten.expand", "aten.detach", "aten.t", "aten.alias",
    "aten.unsqueeze", "aten.squeeze", "aten.reshape", "aten.as_strided",
}


class _OpCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def op_census(ours: torch.nn.Module, theirs: torch.nn.Module, images: torch.Tensor) -> dict:
    """ATen operators (forward + backward, training mode) that the two models call a
    different number of times, split into views (free) and the rest."""
    counts = []
    for model in (ours, theirs):
        model.train()
        with _OpCounter() as counter:
            model(images).sum().backward()
        model.zero_grad(set_to_none=True)
        counts.append(counter.counts)
    differ = {op: (counts[0][op], counts[1][op]) for op in sorted(set(counts[0]) | set(counts[1]))
              if counts[0][op] != counts[1][op]}
    return {
        "views_that_differ": {op: n for op, n in differ.items() if op in VIEW_OPS},
        "other_ops_that_differ": {op: n for op, n in differ.items() if op not in VIEW_OPS},
    }


HEADER = f"{'model':<24}{'batch':>6}{'task':>9}{'threads':>8}{'reps':>6}{'ours ms':>10}{'timm ms':>10}" \
         f"{'ours/timm':>10}{'paired':>8}{'load':>6}"


def benchmark_size(size: str, args: argparse.Namespace, results: dict, rows: list[str]) -> None:
    """Check, census and time one model size; append to ``results`` and ``rows``."""
    name = SIZES[size]
    theirs = timm.create_model(name)
    ours = create_model(name)
    ours.load_state_dict(state_dict_from_timm(theirs.state_dict()))
    check = check_same_function(ours, theirs, torch.randn(2, 3, 224, 224))
    print(f"{name}: same weights, max |Δ logits| = {check['max_abs_logit_diff']:.2e}, "
          f"max |Δ grad| = {check['max_abs_grad_diff']:.2e}")
    if check["max_abs_logit_diff"] > 1e-4:
        raise SystemExit(f"{name}: our model and timm's disagree; timings would not compare the same thing")
    census = op_census(ours, theirs, torch.randn(2, 3, 224, 224))
    print(f"{name}: non-view ATen ops whose counts differ (ours, timm): {census['other_ops_that_differ']}")
    results["checks"][name] = {**check, **census}
    for batch_size in map(int, args.batch_sizes.split(",")):
        images = torch.randn(batch_size, 3, 224, 224)
        labels = torch.randint(0, 1000, (batch_size,))
        for task in args.tasks.split(","):
            reps = repetitions(size, batch_size, task, args.reps_scale)
            steps = {"ours": make_step(ours, task, images, labels), "timm": make_step(theirs, task, images, labels)}
            for threads in map(int, args.threads.split(",")):
                torch.set_num_threads(threads)
                load_before = os.getloadavg()[0]
                times = time_interleaved(steps, reps, warmup=1 if batch_size > 1 and size == "base" else 2)
                load = max(load_before, os.getloadavg()[0])
                median = {key: statistics.median(value) for key, value in times.items()}
                ratio = median["ours"] / median["timm"]
                # each repetition runs both models back to back, under nearly the same load
                paired = paired_ratio(times, "ours", "timm")
                rows.append(f"{name:<24}{batch_size:>6}{task:>9}{threads:>8}{reps:>6}{median['ours'] * 1e3:>10.1f}"
                            f"{median['timm'] * 1e3:>10.1f}{ratio:>10.3f}{paired:>8.3f}{load:>6.1f}")
                print(rows[-1], flush=True)
                results["cases"].append({
                    "model": name, "batch_size": batch_size, "task": task, "threads": threads, "reps": reps,
                    "median_s": median, "ratio_ours_over_timm": ratio, "median_paired_ratio": paired, "times_s": times,
                    "max_load_average_1min": load,
                })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="tiny,small,base", help="comma-separated subset of tiny,small,base")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--tasks", default="forward,train")
    parser.add_argument("--threads", default="2", help="torch.set_num_threads values, e.g. 1,2 (each fixed per case)")
    parser.add_argument("--reps-scale", type=float, default=1.0, help="multiply the number of repetitions")
    parser.add_argument("--quick", action="store_true", help="ViT-Ti only, a third of the repetitions")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.reps_scale = "tiny", args.reps_scale / 3

    torch.manual_seed(0)
    results = {"machine": machine_info(timm=timm.__version__), "dtype": "float32", "device": "cpu", "checks": {},
               "cases": []}
    print(f"torch {torch.__version__}, timm {timm.__version__}, threads {args.threads}, {os.cpu_count()} CPUs")
    print(HEADER)
    rows: list[str] = []
    for size in args.sizes.split(","):
        benchmark_size(size, args, results, rows)
    ratios = [case["ratio_ours_over_timm"] for case in results["cases"]]
    paired = [case["median_paired_ratio"] for case in results["cases"]]
    results["summary"] = {
        "median_ratio": statistics.median(ratios), "max_ratio": max(ratios),
        "median_paired_ratio": statistics.median(paired), "max_paired_ratio": max(paired), "target": 1.05,
    }
    print("\n" + HEADER + "\n" + "\n".join(rows))
    print(f"\nratio ours/timm: median {statistics.median(ratios):.3f}, max {max(ratios):.3f}; paired: median "
          f"{statistics.median(paired):.3f}, max {max(paired):.3f} (target <= 1.05)")
    print("ours/timm: ratio of the medians; paired: median of the per-repetition ratios (both models run back to\n"
          "back, so a change in machine load hits both); load: the highest 1-minute load average seen during the\n"
          "case; above the thread count, other processes competed for the cores")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
