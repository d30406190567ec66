"""Reusable building blocks: patches, positions, attention, MLP, encoder blocks.

Models in :mod:`vitcourse.models` are assembled from these; nothing here knows about a
particular model.
"""

from .attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from .blocks import EncoderBlock
from .drop import DropPath, drop_path
from .mlp import MLP
from .patch import (
    PatchEmbedding,
    grid_size_for,
    patchify,
    patchify_einops,
    unpatchify,
    unpatchify_einops,
)
from .positional import LearnedPositionalEmbedding, sincos_2d_encoding, sinusoidal_encoding

__all__ = [
    "MLP",
    "DropPath",
    "EncoderBlock",
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "PatchEmbedding",
    "causal_mask",
    "drop_path",
    "grid_size_for",
    "patchify",
    "patchify_einops",
    "scaled_dot_product_attention",
    "sincos_2d_encoding",
    "sinusoidal_encoding",
    "unpatchify",
    "unpatchify_einops",
]
