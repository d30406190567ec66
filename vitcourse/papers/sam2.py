"""SAM 2's reported numbers (Ravi et al., 2024), which class 6's slides quote.

* SA-V, the video data set its data engine produced: 50.9 K videos and 642.6 K
  masklets (abstract and Section 5);
* the memory bank keeps the ``N`` most recent frames and up to ``M`` prompted frames;
  the released models use 6 recent frames (``num_maskmem = 7`` slots with the prompted
  one), memories of 64 channels against 256 of the image embedding, and 4 memory
  attention layers (Section 4 and Appendix C);
* on images it is 6 times faster than SAM, and on video it reaches better accuracy
  with 3 times fewer interactions than earlier approaches (abstract).
"""

from __future__ import annotations

from . import Source

__all__ = [
    "EMBED_DIM",
    "FEWER_INTERACTIONS",
    "IMAGE_SPEEDUP",
    "MEMORY_ATTENTION_LAYERS",
    "MEMORY_DIM",
    "NUM_RECENT_FRAMES",
    "SAM2_SOURCE",
    "SAV",
]

SAM2_SOURCE = Source(
    authors="Ravi et al.",
    year=2024,
    title="SAM 2: Segment Anything in Images and Videos",
    where="Abstract, Sections 4-5 and Appendix C",
    arxiv="2408.00714",
    bibkey="ravi2024sam2",
)

#: SA-V's size.
SAV = {"videos": 50_900, "masklets": 642_600}

#: Unprompted recent frames the memory bank keeps.
NUM_RECENT_FRAMES = 6

#: Channels of a memory, and of the image embedding.
MEMORY_DIM = 64
EMBED_DIM = 256

#: Memory-attention layers.
MEMORY_ATTENTION_LAYERS = 4

#: "6x faster than SAM" on images; "3x fewer interactions" on video.
IMAGE_SPEEDUP = 6
FEWER_INTERACTIONS = 3
