"""Measure what the detection chapter's cost figures show, at sizes too slow for a page.

    python -m vitcourse.scripts.detection_costs

* NMS: ``torchvision.ops.nms`` on 100 to 30 000 clustered candidate boxes
  (:func:`vitcourse.detection.nms.nms_timings`) next to DETR's post-processing of its
  100 queries (a softmax and a max: what DETR does instead);
* RT-DETR's hybrid encoder at the paper's size (640 px, D = 256, 8 heads, FFN 1024,
  three RepVGG blocks per fusion, S3/S4/S5 of ResNet-50's widths) with AIFI on S5
  only against AIFI on every scale (:func:`vitcourse.models.rtdetr.encoder_latency`),
  and the same at the chapter's tiny size;
* Hugging Face's tiny RT-DETR, whole model, the same two choices.

One thread, CPU seconds (the thread's own time, robust to other programs). Results:
``vitcourse/detection/results/detection_costs.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

import torch

from ..detection.nms import nms_timings
from ..detection.results import write_results
from ..hub.rtdetr import hf_encoder_latency
from ..measure import time_call
from ..models.detr import postprocess
from ..models.rtdetr import HybridEncoderConfig, encoder_latency

PAPER = HybridEncoderConfig()  # 512/1024/2048 in, D=256, 8 heads, FFN 1024, 3 blocks
TINY = HybridEncoderConfig(in_channels=(32, 48, 64), dim=64, num_heads=4, mlp_dim=256, num_blocks=1)
COUNTS = (100, 300, 1_000, 3_000, 10_000, 30_000)


def detr_postprocess_seconds(num_queries: int = 100, num_classes: int = 91, repeats: int = 20) -> float:
    """CPU seconds of DETR's post-processing of one image's queries."""
    outputs = {"pred_logits": torch.randn(1, num_queries, num_classes + 1), "pred_boxes": torch.rand(1, num_queries, 4)}
    return time_call(lambda: postprocess(outputs, [(640, 640)]), repeats=repeats)[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    results = {
        "nms": nms_timings(COUNTS, repeats=args.repeats),
        "detr_postprocess_cpu_seconds": detr_postprocess_seconds(),
        "hybrid_encoder_paper_640": encoder_latency(PAPER, 640, repeats=max(1, args.repeats // 2)),
        "hybrid_encoder_tiny_320": encoder_latency(TINY, 320, repeats=args.repeats),
        "hf_tiny_rtdetr_320": hf_encoder_latency(320, repeats=args.repeats),
        "configs": {"paper": asdict(PAPER), "tiny": asdict(TINY)},
    }
    write_results("detection_costs", results, started, command="python -m vitcourse.scripts.detection_costs")
    print(json.dumps({k: v for k, v in results.items() if k != "nms"}, indent=2, default=str))


if __name__ == "__main__":
    main()
