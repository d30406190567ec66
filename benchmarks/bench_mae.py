"""MAE's speed-up, measured: the encoder on the visible quarter vs the encoder that also gets [M].

The paper (He et al. 2022, Table 2; :mod:`vitcourse.papers.mae`) reports that running
the encoder on the 25 % visible patches only, instead of on all patches with mask
tokens in the hidden places ("w/ [M]"), cuts the pre-training time by 2.8× to 4.1×
(ViT-L and ViT-H, decoder of 8 or 1 blocks, 128 TPU cores). This script measures the
same two variants of our :class:`~vitcourse.models.MAE` on this CPU: one training step
(forward, loss, backward) at 224×224, batch 1, float32, one thread, for ViT-B/16 and
ViT-L/16 encoders with the paper's decoder (512 wide, 8 blocks) and with a 1-block
decoder. Within each case the two variants alternate (visible, [M], [M], visible, …);
the ratio is the median over repetitions of the paired ratio of **CPU time**
(``time.process_time``, which a busy machine's waiting doesn't inflate), with wall
time recorded too.

    nice -n 10 python benchmarks/bench_mae.py            # ViT-B and ViT-L (minutes)
    nice -n 10 python benchmarks/bench_mae.py --quick    # ViT-B, decoder 1, 2 repetitions

Results: ``benchmarks/results/mae_speedup.json``. ViT-L needs about 3 GB of memory.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from pathlib import Path

import torch
from timing import machine_info

from vitcourse.models import create_model, mae_loss, random_masking
from vitcourse.papers import mae as paper

RESULTS = Path(__file__).parent / "results" / "mae_speedup.json"
CASES = [
    ("ViT-B", "mae_vit_base_patch16", 8),
    ("ViT-B", "mae_vit_base_patch16", 1),
    ("ViT-L", "mae_vit_large_patch16", 8),
    ("ViT-L", "mae_vit_large_patch16", 1),
]


def _steps(model, images: torch.Tensor) -> dict:
    """One training step of each variant (forward, masked-patch loss, backward), same mask."""
    noise = torch.rand(images.shape[0], model.num_patches, generator=torch.Generator().manual_seed(0))
    mask = random_masking(noise.shape[0], model.num_patches, model.config.mask_ratio, noise).mask

    def visible() -> None:
        model.zero_grad(set_to_none=True)
        model(images, noise=noise).loss.backward()

    def with_mask_tokens() -> None:
        model.zero_grad(set_to_none=True)
        pred = model.forward_with_mask_tokens(images, noise=noise)
        mae_loss(pred, images, mask, model.config.patch_size).backward()

    return {"visible": visible, "w/ [M]": with_mask_tokens}


def time_case(model, images: torch.Tensor, reps: int) -> dict:
    steps = _steps(model, images)
    for step in steps.values():  # warm-up
        step()
    cpu = {name: [] for name in steps}
    wall = {name: [] for name in steps}
    order = list(steps)
    for rep in range(reps):
        for name in order if rep % 2 == 0 else order[::-1]:
            c0, w0 = time.process_time(), time.perf_counter()
            steps[name]()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    ratios = [m / v for m, v in zip(cpu["w/ [M]"], cpu["visible"])]
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "median_cpu_s": {k: statistics.median(v) for k, v in cpu.items()},
        "speedup_cpu": statistics.median(ratios),
        "speedup_wall": statistics.median(m / v for m, v in zip(wall["w/ [M]"], wall["visible"])),
    }


def paper_speedup(encoder: str, dec_depth: int) -> float | None:
    for row in paper.WALL_CLOCK:
        if row["encoder"] == encoder and row["dec_depth"] == dec_depth:
            return row["speedup"]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="ViT-B, 1-block decoder, 2 repetitions")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = CASES[1:2] if args.quick else CASES
    reps = 2 if args.quick else args.reps
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    results = {"machine": machine_info(), "threads": 1, "batch_size": 1, "dtype": "float32",
               "mask_ratio": paper.MASK_RATIO, "source": paper.WALL_CLOCK_SOURCE.citation(), "cases": []}  # fmt: skip
    print(f"{'encoder':<8}{'decoder':>8}{'visible s':>11}{'w/ [M] s':>10}{'ratio':>7}{'paper':>7}")
    start = time.perf_counter()
    for encoder, name, dec_depth in cases:
        torch.manual_seed(0)
        model = create_model(name, decoder_depth=dec_depth).train()
        case = time_case(model, images, reps)
        del model
        gc.collect()
        reported = paper_speedup(encoder, dec_depth)
        results["cases"].append({"encoder": encoder, "model": name, "decoder_depth": dec_depth, "reps": reps,
                                 "paper_speedup": reported, **case})  # fmt: skip
        med = case["median_cpu_s"]
        shown = f"{reported:.1f}" if reported else "-"
        print(f"{encoder:<8}{dec_depth:>8}{med['visible']:>11.2f}{med['w/ [M]']:>10.2f}"
              f"{case['speedup_cpu']:>7.2f}{shown:>7}", flush=True)  # fmt: skip
    results["wall_seconds"] = round(time.perf_counter() - start, 1)
    results["load_average_after"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
