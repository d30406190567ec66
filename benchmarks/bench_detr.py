"""Our DETR (ResNet-50) against Hugging Face's ``DetrForObjectDetection``, same weights, forward pass on the CPU.

1. Builds Hugging Face's DETR as ``facebook/detr-resnet-50`` is built (timm's
   ResNet-50, 91 COCO ids, random weights), converts it to ours
   (:func:`vitcourse.hub.detr_from_hf`) and checks that the two give the same
   ``pred_logits`` and ``pred_boxes``: the timings compare one function, two
   implementations.
2. Times one forward pass (inference mode, float32, batch 1) of each, interleaved in
   every repetition (:mod:`timing`), and reports the paired ratio ours / Hugging Face,
   from wall-clock time and from the thread's CPU time (with one thread, CPU time is
   what the model itself costs, whatever else the machine is running).
3. Writes everything, with the machine and its load, to ``benchmarks/results/detr.json``;
   the detection chapter reads it. Target: at most 1.05.

Usage::

    python benchmarks/bench_detr.py                  # 384 px, 1 thread, 12 repetitions
    python benchmarks/bench_detr.py --size 800 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import transformers
from timing import load_average, machine_info

from vitcourse.hub import detr_from_hf

RESULTS = Path(__file__).parent / "results" / "detr.json"
TARGET = 1.05


def build_models(seed: int = 0) -> dict[str, torch.nn.Module]:
    """Hugging Face's DETR-R50 with random weights, and the same weights in ours."""
    from transformers import DetrConfig, DetrForObjectDetection

    torch.manual_seed(seed)
    hf = DetrForObjectDetection(DetrConfig(num_labels=91, use_pretrained_backbone=False)).eval()
    return {"ours": detr_from_hf(hf).eval(), "hf": hf}


def run(size: int, threads: int, reps: int) -> dict:
    torch.set_num_threads(threads)
    models = build_models()
    images = torch.randn(1, 3, size, size)
    calls = {
        "ours": lambda: models["ours"](images),
        "hf": lambda: models["hf"](pixel_values=images),
    }
    with torch.inference_mode():
        a, b = calls["ours"](), calls["hf"]()
        diff = {
            "pred_logits": (a["pred_logits"] - b.logits).abs().max().item(),
            "pred_boxes": (a["pred_boxes"] - b.pred_boxes).abs().max().item(),
        }
        for call in calls.values():  # warm-up
            call()
        wall = {name: [] for name in calls}
        cpu = {name: [] for name in calls}
        order = list(calls)
        for rep in range(reps):
            for name in order if rep % 2 == 0 else order[::-1]:
                w, c = time.perf_counter(), time.thread_time()
                calls[name]()
                cpu[name].append(time.thread_time() - c)
                wall[name].append(time.perf_counter() - w)
    paired = lambda t: statistics.median(x / y for x, y in zip(t["ours"], t["hf"]))  # noqa: E731
    return {
        "machine": machine_info(transformers=transformers.__version__),
        "model": f"DETR-R50 (timm ResNet-50 in Hugging Face, torchvision layout in ours), {size}x{size}, 91 classes",
        "dtype": "float32",
        "threads": threads,
        "reps": reps,
        "hf_attn_implementation": models["hf"].config._attn_implementation,
        "max_abs_diff": diff,
        "median_wall_s": {k: statistics.median(v) for k, v in wall.items()},
        "median_cpu_s": {k: statistics.median(v) for k, v in cpu.items()},
        "ratio_wall": paired(wall),
        "ratio_cpu": paired(cpu),
        "target": TARGET,
        "load_average_after": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=12)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(args.size, args.threads, args.reps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("max_abs_diff", "median_cpu_s", "ratio_wall", "ratio_cpu")}, indent=2))


if __name__ == "__main__":
    main()
