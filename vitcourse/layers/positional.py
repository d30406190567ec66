"""Positional encodings: telling a permutation-invariant model where each token is.

Attention treats its input as a set, so the order of tokens (words, or patches of an
image) has to be added to the tokens themselves. Three ways, all used in the course:

* :func:`sinusoidal_encoding`, the fixed 1-D code of "Attention Is All You Need";
* :class:`LearnedPositionalEmbedding`, a trainable table, as in the ViT paper;
* :func:`sincos_2d_encoding`, a fixed code for a 2-D grid of patches (MAE);

and :func:`resize_pos_embed`, which carries a learned table to another image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LearnedPositionalEmbedding", "resize_pos_embed", "sincos_2d_encoding", "sinusoidal_encoding"]


def sinusoidal_encoding(
    num_positions: int, dim: int, base: float = 10000.0
) -> torch.Tensor:
    """The fixed sinusoidal positional encoding of Vaswani et al. (2017).

    ``PE[pos, 2i] = sin(pos / base^(2i/dim))`` and ``PE[pos, 2i+1] = cos(pos /
    base^(2i/dim))``: each pair of columns is a sine/cosine at one frequency, from fast
    (``i = 0``) to slow.

    Args:
        num_positions: number of positions ``N`` (rows).
        dim: encoding dimension ``D`` (columns); an odd ``D`` ends with a lone sine
            column.
        base: the ``10000`` of the paper (the course's slide uses ``n = 100``).

    Returns:
        ``(N, D)`` float32 tensor.
    """
    if num_positions < 1 or dim < 1:
        raise ValueError(
            f"num_positions and dim must be positive, got {num_positions} and {dim}"
        )
    position = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)  # (N, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)  # (ceil(D/2),)
    angle = position / base ** (two_i / dim)  # (N, ceil(D/2))
    encoding = torch.zeros(num_positions, dim, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(angle)
    encoding[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return encoding.float()


def sincos_2d_encoding(
    grid_h: int, grid_w: int, dim: int, base: float = 10000.0
) -> torch.Tensor:
    """A fixed 2-D sinusoidal encoding for a ``grid_h × grid_w`` grid of patches.

    The first half of the columns encodes the row of the patch, the second half its
    column, each with :func:`sinusoidal_encoding`; so two patches in the same row share
    the second half and two patches in the same column share the first.

    Args:
        grid_h: patches per column.
        grid_w: patches per row.
        dim: encoding dimension ``D``; must be a multiple of 4 (sin/cos for two axes).
        base: frequency base.

    Returns:
        ``(grid_h * grid_w, D)`` in raster order, matching
        :func:`~vitcourse.layers.patchify`.
    """
    if dim % 4:
        raise ValueError(
            f"dim must be a multiple of 4 for a 2-D sin/cos encoding, got {dim}"
        )
    rows = sinusoidal_encoding(grid_h, dim // 2, base)  # (gh, D/2)
    cols = sinusoidal_encoding(grid_w, dim // 2, base)  # (gw, D/2)
    rows = rows[:, None, :].expand(grid_h, grid_w, dim // 2)  # (gh, gw, D/2)
    cols = cols[None, :, :].expand(grid_h, grid_w, dim // 2)  # (gh, gw, D/2)
    return torch.cat([rows, cols], dim=-1).reshape(grid_h * grid_w, dim)


class LearnedPositionalEmbedding(nn.Module):
    """A trainable table of positions, added to the tokens (ViT's choice).

    The table is a parameter of shape ``(1, N, D)`` initialised with small random
    values; training shapes it. It is added, not concatenated, so the token dimension
    stays ``D``.

    Args:
        num_positions: maximum sequence length ``N``.
        dim: token dimension ``D``.
        init_std: standard deviation of the initial values (0.02 as in ViT).

    Shapes:
        input ``(B, L, D)`` with ``L <= N`` → output ``(B, L, D)``.
    """

    def __init__(self, num_positions: int, dim: int, init_std: float = 0.02) -> None:
        super().__init__()
        self.num_positions = num_positions
        self.dim = dim
        self.weight = nn.Parameter(torch.randn(1, num_positions, dim) * init_std)

    def extra_repr(self) -> str:
        return f"num_positions={self.num_positions}, dim={self.dim}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the first ``L`` positions to a batch of token sequences."""
        if x.ndim != 3 or x.shape[-1] != self.dim or x.shape[1] > self.num_positions:
            raise ValueError(
                f"expected tokens shaped (B, L, {self.dim}) with L <= "
                f"{self.num_positions}, got {tuple(x.shape)}"
            )
        return x + self.weight[:, : x.shape[1]]


def resize_pos_embed(
    pos_embed: torch.Tensor,
    old_grid: tuple[int, int],
    new_grid: tuple[int, int],
    num_prefix_tokens: int = 1,
    mode: str = "bicubic",
) -> torch.Tensor:
    """Resample a learned position table to another patch grid (a ViT at another
    resolution).

    A ViT trained at one image size has one learned position per patch of its grid.
    At a larger size there are more patches; their positions are interpolated from the
    old ones as a 2-D image of ``D`` channels (the ViT paper, section 3.2). The prefix
    tokens (``[CLS]``, DeiT's ``[DIST]``) keep theirs.

    Args:
        pos_embed: ``(1, num_prefix_tokens + gh·gw, D)``, positions in raster order.
        old_grid: ``(gh, gw)`` of the table.
        new_grid: ``(gh', gw')`` wanted.
        num_prefix_tokens: tokens before the patches.
        mode: ``"bicubic"`` (as timm) or ``"bilinear"``.

    Returns:
        ``(1, num_prefix_tokens + gh'·gw', D)``.
    """
    old_h, old_w = old_grid
    new_h, new_w = new_grid
    expected = num_prefix_tokens + old_h * old_w
    if pos_embed.ndim != 3 or pos_embed.shape[:2] != (1, expected):
        raise ValueError(
            f"expected a position table shaped (1, {expected}, D) for "
            f"{num_prefix_tokens} prefix token(s) and a {old_h}x{old_w} grid, got "
            f"{tuple(pos_embed.shape)}"
        )
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    D = grid.shape[-1]
    # (1, D, gh, gw): positions as an image
    grid = grid.reshape(1, old_h, old_w, D).permute(0, 3, 1, 2)
    # (1, D, gh', gw')
    grid = F.interpolate(grid, size=(new_h, new_w), mode=mode, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_h * new_w, D)  # (1, gh'·gw', D)
    return torch.cat([prefix, grid], dim=1)
