"""Reusable building blocks: patches, positions, attention, MLP, encoder blocks, windows.

Models in :mod:`vitcourse.models` are assembled from these; nothing here knows about a
particular model.
"""

from .attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from .blocks import EncoderBlock
from .drop import DropPath, drop_path, drop_path_schedule
from .merging import PatchMerging
from .mlp import MLP
from .patch import (
    PatchEmbedding,
    grid_size_for,
    patchify,
    patchify_einops,
    unpatchify,
    unpatchify_einops,
)
from .positional import LearnedPositionalEmbedding, resize_pos_embed, sincos_2d_encoding, sinusoidal_encoding
from .window import (
    WindowAttention,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)

__all__ = [
    "MLP",
    "DropPath",
    "EncoderBlock",
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "PatchEmbedding",
    "PatchMerging",
    "WindowAttention",
    "causal_mask",
    "drop_path",
    "drop_path_schedule",
    "grid_size_for",
    "patchify",
    "patchify_einops",
    "relative_position_index",
    "resize_pos_embed",
    "scaled_dot_product_attention",
    "shifted_window_mask",
    "sincos_2d_encoding",
    "sinusoidal_encoding",
    "unpatchify",
    "unpatchify_einops",
    "window_partition",
    "window_reverse",
]
