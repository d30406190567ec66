"""Segment Anything (SAM), one file per part as in segment-anything's ``modeling/``.

* :mod:`.image_encoder`: a ViT with windowed attention, relative positions and a neck;
* :mod:`.prompt_encoder`: points and boxes (random Fourier positions + type embeddings),
  masks (convolutions);
* :mod:`.transformer`: the two-way transformer (token → image, image → token);
* :mod:`.mask_decoder`: output tokens, hypernetworks, three ambiguity masks, IoU head;
* :mod:`.automatic`: masks from a grid of points (filters and NMS);
* :mod:`.sam`: the model, its config and the presets ``sam_vit_base``/``large``/``huge``.
"""

from .automatic import AutoMaskConfig, generate_masks, mask_nms, match_masks, stability_score
from .common import LayerNorm2d, StackedMLP
from .image_encoder import SamImageEncoder, WindowedBlock, decomposed_relative_bias
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder, RandomFourierEncoding
from .sam import Sam, SamConfig
from .transformer import TwoWayBlock, TwoWayTransformer

__all__ = [
    "AutoMaskConfig",
    "LayerNorm2d",
    "MaskDecoder",
    "PromptEncoder",
    "RandomFourierEncoding",
    "Sam",
    "SamConfig",
    "SamImageEncoder",
    "StackedMLP",
    "TwoWayBlock",
    "TwoWayTransformer",
    "WindowedBlock",
    "decomposed_relative_bias",
    "generate_masks",
    "mask_nms",
    "match_masks",
    "stability_score",
]
