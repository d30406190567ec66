"""SAM 2: SAM with a memory, for video; one file per part, as :mod:`vitcourse.models.sam`.

* :mod:`.memory_encoder`: the predicted mask, downsampled by convolutions, fused with
  the frame's features into a memory;
* :mod:`.memory_bank`: a FIFO of the N latest frames plus the prompted frames, each with
  its memory and object pointer;
* :mod:`.memory_attention`: self-attention, cross-attention to the memories, MLP;
* :mod:`.sam2`: the model on top of our SAM, its config and the preset ``sam2_mini``;
* :mod:`.predictor`: streaming, one frame at a time, and whole clips;
* :mod:`.training`: clips, loss, and the evaluation with and without memory.
"""

from .memory_attention import MemoryAttention, MemoryAttentionLayer
from .memory_bank import MemoryBank, MemoryEntry
from .memory_encoder import FuserBlock, MaskDownsampler, MemoryEncoder
from .predictor import VideoPredictor, track_video
from .sam2 import FrameOutput, Sam2, Sam2Config

__all__ = [
    "FrameOutput",
    "FuserBlock",
    "MaskDownsampler",
    "MemoryAttention",
    "MemoryAttentionLayer",
    "MemoryBank",
    "MemoryEncoder",
    "MemoryEntry",
    "Sam2",
    "Sam2Config",
    "VideoPredictor",
    "track_video",
]
