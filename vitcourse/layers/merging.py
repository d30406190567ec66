"""Patch merging: Swin's downsampling between stages, the transformer's "pooling".

Every ``2 × 2`` group of neighbouring tokens is concatenated (``4C`` numbers), normalised
and projected to ``2C``: the grid halves in each direction and the channels double, as
in a CNN. After three merges, a Swin that started from ``4 × 4`` patches sees ``32 × 32``
pixels per token.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PatchMerging"]


class PatchMerging(nn.Module):
    """Concatenate ``2 × 2`` neighbours and project ``4C → 2C`` (LayerNorm first).

    The four neighbours are concatenated in the order of the Swin paper's code (and
    timm's): top-left, bottom-left, top-right, bottom-right.

    Args:
        embed_dim: input channels ``C``.
        out_dim: output channels (``2C`` by default).
        norm_eps: LayerNorm epsilon.

    Shapes:
        ``(B, H, W, C)`` → ``(B, H/2, W/2, out_dim)``; ``H`` and ``W`` must be even.
    """

    def __init__(self, embed_dim: int, out_dim: int | None = None, norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.out_dim = out_dim or 2 * embed_dim
        self.norm = nn.LayerNorm(4 * embed_dim, eps=norm_eps)
        self.reduction = nn.Linear(4 * embed_dim, self.out_dim, bias=False)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, out_dim={self.out_dim}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Merge ``2 × 2`` neighbourhoods of a ``(B, H, W, C)`` map."""
        if x.ndim != 4 or x.shape[-1] != self.embed_dim or x.shape[1] % 2 or x.shape[2] % 2:
            raise ValueError(
                f"expected a feature map shaped (B, H, W, {self.embed_dim}) with even H "
                f"and W, got {tuple(x.shape)}"
            )
        top_left = x[:, 0::2, 0::2]  # (B, H/2, W/2, C)
        bottom_left = x[:, 1::2, 0::2]
        top_right = x[:, 0::2, 1::2]
        bottom_right = x[:, 1::2, 1::2]
        # (B, H/2, W/2, 4C)
        x = torch.cat([top_left, bottom_left, top_right, bottom_right], dim=-1)
        return self.reduction(self.norm(x))  # (B, H/2, W/2, out_dim)
