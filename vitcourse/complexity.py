"""The cost of attention, as the slides count it.

Attention compares every token with every other token, so its score matrix has
``N²`` entries per head and per layer. These functions turn that sentence into
numbers: how many patches an image gives, how many entries and bytes the attention
matrices take, and the multiply-add counts ``Ω`` of global (ViT) versus windowed
(Swin) attention.
"""

from __future__ import annotations

import math

__all__ = [
    "attention_entries",
    "attention_memory_bytes",
    "format_bytes",
    "msa_flops",
    "num_patches",
    "patch_embedding_params",
    "sequence_length",
    "wmsa_flops",
]


def num_patches(img_size: int | tuple[int, int], patch_size: int, pad: bool = False) -> int:
    """Number of patches ``N = (H/P)·(W/P)`` (rounded up when ``pad``, else sizes must divide)."""
    height, width = (img_size, img_size) if isinstance(img_size, int) else img_size
    if not pad and (height % patch_size or width % patch_size):
        raise ValueError(
            f"image size {height}x{width} is not divisible by patch_size={patch_size}; pass pad=True to round up"
        )
    return math.ceil(height / patch_size) * math.ceil(width / patch_size)


def sequence_length(img_size: int | tuple[int, int], patch_size: int, extra_tokens: int = 1, pad: bool = False) -> int:
    """Tokens the encoder sees: the patches plus ``extra_tokens`` (1 for ``[CLS]``, 2 for DeiT)."""
    return num_patches(img_size, patch_size, pad=pad) + extra_tokens


def attention_entries(tokens: int) -> int:
    """Entries of one attention matrix (one head, one layer): ``N²``."""
    return tokens * tokens


def attention_memory_bytes(tokens: int, layers: int = 1, heads: int = 1, bytes_per_value: int = 4) -> int:
    """Bytes needed to hold every attention matrix of a forward pass at once.

    Args:
        tokens: sequence length ``N``.
        layers: number of encoder layers.
        heads: heads per layer.
        bytes_per_value: 4 for float32, 2 for float16/bfloat16.

    Returns:
        ``N² · layers · heads · bytes_per_value``.
    """
    return attention_entries(tokens) * layers * heads * bytes_per_value


def msa_flops(h: int, w: int, c: int) -> int:
    """Ω(MSA) = 4·hw·C² + 2·(hw)²·C, global multi-head self-attention on an ``h×w`` grid of ``C`` channels.

    The first term is the four ``C×C`` projections (Q, K, V, output) of ``hw`` tokens;
    the second, ``QKᵀ`` and the product with ``V``, grows with the square of the tokens.
    """
    return 4 * h * w * c * c + 2 * (h * w) ** 2 * c


def wmsa_flops(h: int, w: int, c: int, window: int = 7) -> int:
    """Ω(W-MSA) = 4·hw·C² + 2·M²·hw·C, Swin's attention inside ``M×M`` windows: linear in ``hw``."""
    return 4 * h * w * c * c + 2 * window * window * h * w * c


def patch_embedding_params(patch_size: int, in_chans: int, embed_dim: int, bias: bool = True) -> int:
    """Parameters of the patch projection: ``P²·C·D`` weights plus ``D`` biases."""
    return patch_size * patch_size * in_chans * embed_dim + (embed_dim if bias else 0)


def format_bytes(num_bytes: float, binary: bool = True) -> str:
    """Human-readable size: ``format_bytes(824633720832) == '768 GiB'``.

    Args:
        num_bytes: a size in bytes.
        binary: powers of 1024 (KiB, MiB, GiB) or of 1000 (KB, MB, GB).
    """
    step = 1024 if binary else 1000
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] if binary else ["B", "KB", "MB", "GB", "TB", "PB"]
    value = float(num_bytes)
    for unit in units:
        if abs(value) < step or unit == units[-1]:
            return f"{value:.0f} {unit}" if value == int(value) or unit == "B" else f"{value:.1f} {unit}"
        value /= step
    raise AssertionError("unreachable")
