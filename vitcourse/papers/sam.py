"""Segment Anything's reported numbers (Kirillov et al., 2023), which class 6's slides quote.

* SA-1B, the data set the data engine produced: 11 M images and 1.1 B masks
  (abstract and Section 5);
* the prompt encoder and mask decoder take about 50 ms per prompt in a web browser, on
  a CPU, once the image embedding is computed (Section 3, "Efficiency"); the slide
  quotes the same figure;
* the image encoder is an MAE-pre-trained ViT-H/16 with 14×14 windows and four global
  attention blocks, on 1024×1024 inputs, giving a 64×64 embedding of 256 channels
  (Section 3 and Appendix A);
* the decoder predicts 3 masks for an ambiguous prompt, and the mask loss is a linear
  combination of focal and dice losses in a 20:1 ratio (Section 3, "Losses and training").
"""

from __future__ import annotations

from . import Source

__all__ = [
    "DECODER_LATENCY_MS",
    "FOCAL_TO_DICE",
    "IMAGE_EMBEDDING",
    "INPUT_SIZE",
    "NUM_MULTIMASK_OUTPUTS",
    "SA1B",
    "SAM_ARCHITECTURE_SOURCE",
    "SAM_SOURCE",
]

SAM_SOURCE = Source(
    authors="Kirillov et al.",
    year=2023,
    title="Segment Anything",
    where="Abstract and Section 5 (SA-1B)",
    arxiv="2304.02643",
    bibkey="kirillov2023sam",
)

SAM_ARCHITECTURE_SOURCE = Source(
    authors=SAM_SOURCE.authors,
    year=SAM_SOURCE.year,
    title=SAM_SOURCE.title,
    where="Section 3 (Segment Anything Model) and Appendix A",
    arxiv=SAM_SOURCE.arxiv,
    bibkey=SAM_SOURCE.bibkey,
)

#: SA-1B's size.
SA1B = {"images": 11_000_000, "masks": 1_100_000_000}

#: Prompt encoder + mask decoder time per prompt, browser on a CPU (milliseconds, "~50").
DECODER_LATENCY_MS = 50

#: Input side of the image encoder, in pixels.
INPUT_SIZE = 1024

#: The image embedding: (channels, height, width).
IMAGE_EMBEDDING = (256, 64, 64)

#: Masks the decoder returns for an ambiguous prompt.
NUM_MULTIMASK_OUTPUTS = 3

#: Weight of the focal loss against the dice loss.
FOCAL_TO_DICE = 20
