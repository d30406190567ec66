"""DETR's 2-D sine positional encoding: where each cell of the feature map is.

The encoder sees the feature map as a set of ``H·W`` tokens; this tells it where
each one sits. Each axis gets the 1-D sinusoidal code of "Attention Is All You Need"
(chapter 1), computed on the *normalised* coordinate (``y / H`` and ``x / W`` times
``2π``), so the code means "a third of the way down" at every resolution; the row's
code fills the first half of the channels, the column's the second. Padded pixels
(batches of images of different sizes) don't count: coordinates are cumulative sums
of the valid-pixel mask.

Unlike :func:`vitcourse.layers.sincos_2d_encoding` (MAE's, on integer positions),
sines and cosines are interleaved per frequency, as DETR's repository writes them.
"""

from __future__ import annotations

import math

import torch

__all__ = ["sine_position_encoding"]


def sine_position_encoding(
    valid: torch.Tensor,
    dim: int,
    temperature: float = 10000.0,
    normalize: bool = True,
    scale: float = 2 * math.pi,
    eps: float = 1e-6,
) -> torch.Tensor:
    """DETR's sine position code of every cell of a feature map.

    Args:
        valid: ``(B, H, W)`` bool, True where the cell holds image (False: padding).
        dim: channels of the code ``D`` (the transformer's width); a multiple of 4.
        temperature: the frequency base (10 000, as in the 1-D code).
        normalize: code the coordinate as a fraction of the valid extent times
            ``scale`` (DETR) instead of the cell index.
        scale: the fraction's range, ``2π``.
        eps: keeps an all-padding row from dividing by zero.

    Returns:
        ``(B, D, H, W)`` float32: channels ``[0, D/2)`` code the row, ``[D/2, D)`` the
        column; within each half, pairs ``(sin, cos)`` from fast to slow.
    """
    if valid.ndim != 3:
        raise ValueError(
            f"expected a (B, H, W) mask of valid cells, got {tuple(valid.shape)}"
        )
    if dim % 4:
        raise ValueError(
            f"dim must be a multiple of 4 (half for rows, half for columns, each in "
            f"sin/cos pairs), got {dim}"
        )
    half = dim // 2
    y = valid.float().cumsum(1)  # (B, H, W): 1, 2, … down each column
    x = valid.float().cumsum(2)  # (B, H, W): 1, 2, … along each row
    if normalize:
        y = y / (y[:, -1:, :] + eps) * scale
        x = x / (x[:, :, -1:] + eps) * scale
    i = torch.arange(half, dtype=torch.float32, device=valid.device)
    freq = temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / half)  # (D/2,)
    y = y[..., None] / freq  # (B, H, W, D/2)
    x = x[..., None] / freq
    y = torch.stack((y[..., 0::2].sin(), y[..., 1::2].cos()), dim=4).flatten(3)
    x = torch.stack((x[..., 0::2].sin(), x[..., 1::2].cos()), dim=4).flatten(3)
    return torch.cat((y, x), dim=3).permute(0, 3, 1, 2)  # (B, D, H, W)
