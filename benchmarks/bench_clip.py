"""Our CLIP ViT-B/32 against Hugging Face's ``CLIPModel``, same weights, on the CPU.

Builds Hugging Face's ``CLIPModel`` at ViT-B/32 size with random weights, converts it to
ours (:func:`vitcourse.hub.clip_from_hf`), checks that both give the same image and text
features, then times the forward pass that scores a batch of images against a batch of
texts (``model(pixel_values, input_ids)`` / ``CLIPModel(...).logits_per_image``), the two
models interleaved in every repetition (:mod:`timing`). Prints the median ratio ours /
Hugging Face (target: at most 1.05) and writes it, with the machine and the load
average, to ``benchmarks/results/clip_hf.json``.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_clip.py --reps 10 --batch 4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import transformers
from timing import load_average, machine_info, paired_ratio, time_interleaved

from vitcourse.hub import clip_from_hf, clip_tokenizer
from vitcourse.hub.clip import _hf_config
from vitcourse.models.registry import get_config

RESULTS = Path(__file__).parent / "results" / "clip_hf.json"
TARGET = 1.05


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hf = transformers.CLIPModel(_hf_config(get_config("clip_vit_base_patch32"))).eval()
    ours = clip_from_hf(hf).eval()
    texts = ["a photo of a cat", "a photo of a dog", "a diagram", "a red star"]
    ids = clip_tokenizer()(
        (texts * args.batch)[: args.batch], padding="max_length", return_tensors="pt"
    ).input_ids
    images = torch.randn(args.batch, 3, 224, 224)
    with torch.no_grad():
        gap = (ours(images, ids) - hf(input_ids=ids, pixel_values=images).logits_per_image).abs().max().item()

    @torch.no_grad()
    def run_ours() -> None:
        ours(images, ids)

    @torch.no_grad()
    def run_hf() -> None:
        hf(input_ids=ids, pixel_values=images)

    times = time_interleaved({"ours": run_ours, "hf": run_hf}, args.reps)
    ratio = paired_ratio(times, "ours", "hf")
    result = {
        "ratio_ours_over_hf": round(ratio, 3),
        "target": TARGET,
        "logits_max_abs_diff": gap,
        "batch": args.batch,
        "reps": args.reps,
        "threads": args.threads,
        "median_seconds": {k: sorted(v)[len(v) // 2] for k, v in times.items()},
        "load_average": load_average(),
        "machine": machine_info(transformers=transformers.__version__),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"logits max |diff| {gap:.2e}; forward ours / Hugging Face = {ratio:.3f} (target ≤ {TARGET})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
