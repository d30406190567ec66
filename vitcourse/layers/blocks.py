"""The Transformer encoder block: attention and FFN, each wrapped in Add & Norm.

Two arrangements of the same parts:

* **pre-norm** (ViT, GPT-2, the default): ``x = x + Attn(LN(x))`` then ``x = x + FFN(LN(x))``;
  the residual path stays an identity, which keeps deep stacks trainable;
* **post-norm** (the 2017 Transformer's "Add & Norm"): ``x = LN(x + Attn(x))`` then
  ``x = LN(x + FFN(x))``.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import MultiHeadAttention
from .drop import DropPath
from .mlp import MLP

__all__ = ["EncoderBlock"]


class EncoderBlock(nn.Module):
    """One Transformer encoder layer (multi-head self-attention + MLP, residuals, LayerNorm).

    Args:
        embed_dim: token dimension ``D``.
        num_heads: attention heads.
        mlp_ratio: hidden size of the MLP as a multiple of ``D``.
        qkv_bias: bias in the Q, K, V projections.
        dropout: dropout on each branch's output and inside the MLP.
        attn_dropout: dropout on the attention weights.
        drop_path: stochastic-depth probability of skipping each branch while training.
        norm_first: pre-norm (True, ViT) or post-norm (False, the 2017 paper).
        norm_eps: LayerNorm epsilon (1e-6 as in timm's ViT).

    Shapes:
        ``(B, N, D)`` → ``(B, N, D)``; with ``return_attention`` also ``(B, h, N, N)``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        drop_path: float = 0.0,
        norm_first: bool = True,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.attn = MultiHeadAttention(embed_dim, num_heads, qkv_bias=qkv_bias, dropout=attn_dropout)
        self.norm2 = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.mlp = MLP(embed_dim, int(embed_dim * mlp_ratio), dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.drop_path = DropPath(drop_path)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Run the block.

        Args:
            x: ``(B, N, D)`` tokens.
            mask: optional attention mask, as in :class:`MultiHeadAttention`.
            return_attention: also return this block's attention weights ``(B, h, N, N)``.
        """
        weights = None
        if self.norm_first:
            attended = self.attn(
                self.norm1(x), mask=mask, return_attention=return_attention
            )
            if return_attention:
                attended, weights = attended
            x = x + self.drop_path(self.drop(attended))
            x = x + self.drop_path(self.mlp(self.norm2(x)))
        else:
            attended = self.attn(x, mask=mask, return_attention=return_attention)
            if return_attention:
                attended, weights = attended
            x = self.norm1(x + self.drop_path(self.drop(attended)))
            x = self.norm2(x + self.drop_path(self.mlp(x)))
        return (x, weights) if return_attention else x
