"""Reusable building blocks: patches, positions, attention, MLP, encoder and decoder blocks, windows.

Models in :mod:`vitcourse.models` are assembled from these; nothing here knows about a
particular model.
"""

from .attention import KVCache, MultiHeadAttention, causal_mask, scaled_dot_product_attention
from .blocks import EncoderBlock
from .decoder import DecoderBlock, DecoderCache
from .drop import DropPath, drop_path, drop_path_schedule
from .merging import PatchMerging
from .mlp import ACTIVATIONS, MLP, QuickGELU, activation_layer
from .norm import NORMS, make_norm
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
    "ACTIVATIONS",
    "MLP",
    "NORMS",
    "DecoderBlock",
    "DecoderCache",
    "DropPath",
    "EncoderBlock",
    "KVCache",
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "PatchEmbedding",
    "PatchMerging",
    "QuickGELU",
    "WindowAttention",
    "activation_layer",
    "causal_mask",
    "drop_path",
    "drop_path_schedule",
    "grid_size_for",
    "make_norm",
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
