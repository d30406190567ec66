"""SAM's two-way transformer: prompt tokens and image tokens attend to each other.

Each block updates both sides (the prompt tokens are few, the image tokens
``g²``, 4096 in SAM)::

    tokens = LN(tokens + SelfAttn(tokens + pe_t, tokens + pe_t, tokens))
    tokens = LN(tokens + CrossAttn(tokens + pe_t, image + pe_i, image))    token → image
    tokens = LN(tokens + MLP(tokens))
    image  = LN(image + CrossAttn(image + pe_i, tokens + pe_t, tokens))     image → token

Positions are added to queries and keys at every attention, never to values (``pe_t``
is the tokens' own initial embedding, ``pe_i`` the image's Fourier positions). The
cross-attentions work in half the width (``inner_dim = C / 2``) to save compute over
the 4096 image tokens. After the blocks, one last token → image attention.

Every attention is :class:`~vitcourse.layers.MultiHeadAttention` with ``inner_dim`` and
``value`` (keys and values from different tokens).
"""

from __future__ import annotations

import torch
from torch import nn

from ...layers import MLP, MultiHeadAttention

__all__ = ["TwoWayBlock", "TwoWayTransformer"]


class TwoWayBlock(nn.Module):
    """One two-way block (see the module docstring).

    Args:
        embed_dim: channels ``C``.
        num_heads: attention heads.
        mlp_dim: hidden size of the tokens' MLP (ReLU).
        downsample_rate: cross-attentions work in ``C / downsample_rate`` dimensions.
        skip_first_pe: the first block's self-attention sees the tokens without adding
            ``pe_t`` again (they are exactly ``pe_t`` then) and replaces, not adds.
        norm_eps: LayerNorm epsilon.

    Shapes:
        tokens ``(B, T, C)``, image ``(B, g², C)`` → the same two.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        mlp_dim: int = 2048,
        downsample_rate: int = 2,
        skip_first_pe: bool = False,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        inner = embed_dim // downsample_rate
        self.self_attn = MultiHeadAttention(embed_dim, num_heads)
        self.norm1 = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.cross_attn_token_to_image = MultiHeadAttention(embed_dim, num_heads, inner_dim=inner)
        self.norm2 = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.mlp = MLP(embed_dim, mlp_dim, act_layer=nn.ReLU)
        self.norm3 = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.norm4 = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.cross_attn_image_to_token = MultiHeadAttention(embed_dim, num_heads, inner_dim=inner)
        self.skip_first_pe = skip_first_pe

    def forward(
        self,
        tokens: torch.Tensor,
        image: torch.Tensor,
        token_pe: torch.Tensor,
        image_pe: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Update the prompt tokens and the image tokens."""
        if self.skip_first_pe:
            tokens = self.self_attn(tokens)
        else:
            q = tokens + token_pe
            tokens = tokens + self.self_attn(q, context=q, value=tokens)
        tokens = self.norm1(tokens)
        keys = image + image_pe  # positions on queries and keys, never on values
        to_image = self.cross_attn_token_to_image(
            tokens + token_pe, context=keys, value=image
        )
        tokens = self.norm2(tokens + to_image)
        tokens = self.norm3(tokens + self.mlp(tokens))
        to_tokens = self.cross_attn_image_to_token(
            keys, context=tokens + token_pe, value=tokens
        )
        image = self.norm4(image + to_tokens)
        return tokens, image


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks and a final token → image attention.

    Args:
        depth: blocks (2 in SAM).
        embed_dim: channels ``C`` (256).
        num_heads: attention heads (8).
        mlp_dim: hidden size of the MLPs (2048).
        downsample_rate: width divisor of the cross-attentions (2).
        norm_eps: LayerNorm epsilon of the blocks (the final LayerNorm keeps
            PyTorch's 1e-5, as SAM's does).

    Shapes:
        image ``(B, C, g, g)``, image_pe ``(B, C, g, g)``, tokens ``(B, T, C)`` →
        tokens ``(B, T, C)`` and image tokens ``(B, g², C)``.
    """

    def __init__(
        self,
        depth: int = 2,
        embed_dim: int = 256,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        downsample_rate: int = 2,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TwoWayBlock(embed_dim, num_heads, mlp_dim, downsample_rate, skip_first_pe=i == 0, norm_eps=norm_eps)
            for i in range(depth)
        )
        self.final_attn_token_to_image = MultiHeadAttention(
            embed_dim, num_heads, inner_dim=embed_dim // downsample_rate
        )
        self.norm_final = nn.LayerNorm(embed_dim)

    def forward(
        self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the blocks; see the class docstring for shapes."""
        image = image.flatten(2).transpose(1, 2)  # (B, g², C)
        image_pe = image_pe.flatten(2).transpose(1, 2)
        token_pe = tokens
        for block in self.blocks:
            tokens, image = block(tokens, image, token_pe, image_pe)
        attended = self.final_attn_token_to_image(tokens + token_pe, context=image + image_pe, value=image)
        return self.norm_final(tokens + attended), image
