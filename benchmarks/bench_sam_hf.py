"""Our SAM against Hugging Face's ``SamModel``, same weights, on the CPU.

1. Builds a ``SamModel`` with random weights (SAM ViT-B by default, or a smaller image
   size with ``--img-size``), converts it (:func:`vitcourse.hub.sam_from_hf`) and checks
   that both give the same masks.
2. Times, interleaved in every repetition (:mod:`timing`): the image encoder on one
   image, and the prompt → masks step (prompt encoder + mask decoder) on the
   precomputed embedding, for each model.
3. Prints the ratios ours / Hugging Face (target: at most 1.05) and prompt / encoder,
   and writes them with the machine and the load average to
   ``benchmarks/results/sam_hf.json``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_sam_hf.py --img-size 256 --reps 5
    python benchmarks/bench_sam_hf.py            # 1024 pixels: minutes per repetition on 2 cores
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import transformers
from timing import load_average, machine_info, paired_ratio, time_interleaved

from vitcourse.hub import sam_from_hf

RESULTS = Path(__file__).parent / "results" / "sam_hf.json"
TARGET = 1.05


def build(img_size: int, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Hugging Face's SAM ViT-B layout at ``img_size`` pixels, random weights, and ours."""
    torch.manual_seed(seed)
    grid = img_size // 16
    config = transformers.SamConfig(
        vision_config={"image_size": img_size},
        prompt_encoder_config={"image_size": img_size, "image_embedding_size": grid},
    )
    hf = transformers.SamModel(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return hf, sam_from_hf(hf).eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--img-size", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    hf, ours = build(args.img_size)
    image = torch.randn(1, 3, args.img_size, args.img_size)
    points = torch.tensor([[[[args.img_size / 2, args.img_size / 3]]]])
    labels = torch.ones(1, 1, 1, dtype=torch.long)
    with torch.no_grad():
        embedding = ours.encode_image(image)
        theirs = hf(image_embeddings=embedding, input_points=points, input_labels=labels)
        masks, _ = ours.predict(embedding, points, labels)
    gap = (masks - theirs.pred_masks).abs().max().item()
    print(f"same weights: largest mask difference {gap:.1e}")

    def no_grad(fn):
        def run():
            with torch.no_grad():
                fn()

        return run

    steps = {
        "ours_encoder": no_grad(lambda: ours.encode_image(image)),
        "hf_encoder": no_grad(lambda: hf.get_image_embeddings(image)),
        "ours_prompt": no_grad(lambda: ours.predict(embedding, points, labels)),
        "hf_prompt": no_grad(
            lambda: hf(image_embeddings=embedding, input_points=points, input_labels=labels)
        ),
    }
    times = time_interleaved(steps, reps=args.reps, warmup=1)
    result = {
        "img_size": args.img_size,
        "threads": args.threads,
        "reps": args.reps,
        "max_mask_difference": gap,
        "median_seconds": {name: statistics.median(t) for name, t in times.items()},
        "ratio_encoder_ours_over_hf": paired_ratio(times, "ours_encoder", "hf_encoder"),
        "ratio_prompt_ours_over_hf": paired_ratio(times, "ours_prompt", "hf_prompt"),
        "ratio_prompt_over_encoder_ours": paired_ratio(times, "ours_prompt", "ours_encoder"),
        "target": TARGET,
        "load_average": load_average(),
        "machine": machine_info(torch=torch.__version__, transformers=transformers.__version__),
    }
    for key in ("ratio_encoder_ours_over_hf", "ratio_prompt_ours_over_hf", "ratio_prompt_over_encoder_ours"):
        print(f"{key}: {result[key]:.3f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
