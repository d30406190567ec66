"""The Transformer decoder block: causal self-attention, optional cross-attention, MLP.

A decoder predicts token ``i + 1`` from tokens ``0..i``, so its self-attention is
*causal*: token ``i`` may not look at the tokens after it. With that one mask, a stack
of these blocks is GPT (decoder-only); with a cross-attention sub-layer between the two,
queries from the text and keys/values from an encoder's output, it is the decoder of the
2017 Transformer, of Donut or of TrOCR. The same three arrangements as
:class:`~vitcourse.layers.EncoderBlock`:

* **pre-norm** (GPT-2, GPT-3, ImageGPT, the default)::

      x = x + SelfAttn(LN(x), causal)
      x = x + CrossAttn(LN(x), context)        only with cross_attention=True
      x = x + MLP(LN(x))

* **post-norm** (GPT-1, the 2017 Transformer)::

      x = LN(x + SelfAttn(x, causal))
      x = LN(x + CrossAttn(x, context))        only with cross_attention=True
      x = LN(x + MLP(x))

The attention is the one :class:`~vitcourse.layers.MultiHeadAttention`; generation
passes a :class:`~vitcourse.layers.KVCache` per sub-layer so that each new token costs
one token's work.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .attention import KVCache, MultiHeadAttention
from .mlp import MLP
from .norm import make_norm

__all__ = ["DecoderBlock", "DecoderCache"]


class DecoderCache:
    """What one :class:`DecoderBlock` remembers while generating.

    Attributes:
        self_attn: keys and values of every token so far (grows by one per step).
        cross_attn: keys and values of the context (filled once).
    """

    def __init__(self) -> None:
        self.self_attn = KVCache()
        self.cross_attn = KVCache()

    def __len__(self) -> int:
        """Tokens seen so far (the position of the next token)."""
        return len(self.self_attn)

    def __repr__(self) -> str:
        return f"DecoderCache(tokens={len(self)}, context={len(self.cross_attn)})"


class DecoderBlock(nn.Module):
    """A decoder layer: causal self-attention, optional cross-attention, MLP.

    Args:
        embed_dim: token dimension ``D``.
        num_heads: attention heads ``h``.
        mlp_ratio: hidden size of the MLP as a multiple of ``D``.
        qkv_bias: bias in the Q, K, V projections.
        dropout: dropout on each sub-layer's output and inside the MLP.
        attn_dropout: dropout on the attention weights.
        cross_attention: add a cross-attention sub-layer (queries from ``x``, keys and
            values from a ``context`` such as an image encoder's output).
        norm_first: pre-norm (True: GPT-2) or post-norm (False: GPT-1).
        norm: ``"layernorm"`` or ``"rmsnorm"`` (:func:`~vitcourse.layers.make_norm`).
        norm_eps: the norms' ε (1e-5 in GPT-2).
        act_layer: the MLP's activation class (GPT uses GELU's tanh approximation).

    Shapes:
        ``x`` ``(B, N, D)``, ``context`` ``(B, M, D)`` → ``(B, N, D)``; with
        ``return_attention`` also the self-attention weights ``(B, h, N, P + N)``
        (``P`` tokens in the cache).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        cross_attention: bool = False,
        norm_first: bool = True,
        norm: str = "layernorm",
        norm_eps: float = 1e-5,
        act_layer: Callable[[], nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.norm1 = make_norm(norm, embed_dim, norm_eps)
        self.attn = MultiHeadAttention(
            embed_dim, num_heads, qkv_bias=qkv_bias, dropout=attn_dropout
        )
        if cross_attention:
            self.norm_cross = make_norm(norm, embed_dim, norm_eps)
            self.cross_attn = MultiHeadAttention(
                embed_dim, num_heads, qkv_bias=qkv_bias, dropout=attn_dropout
            )
        self.norm2 = make_norm(norm, embed_dim, norm_eps)
        self.mlp = MLP(
            embed_dim, int(embed_dim * mlp_ratio), act_layer=act_layer, dropout=dropout
        )
        self.drop = nn.Dropout(dropout)

    @property
    def has_cross_attention(self) -> bool:
        """Whether the block has a cross-attention sub-layer."""
        return hasattr(self, "cross_attn")

    def _add(self, x: torch.Tensor, out: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        """The residual: ``x + out`` (pre-norm) or ``LN(x + out)`` (post-norm)."""
        return x + out if self.norm_first else norm(x + out)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        cache: DecoderCache | None = None,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Run the block on new tokens.

        Args:
            x: ``(B, N, D)`` tokens (with a cache: only the tokens not seen yet).
            context: ``(B, M, D)`` for the cross-attention; required iff the block
                has one.
            mask: extra self-attention mask (e.g. padding), combined with the causal
                one.
            context_mask: cross-attention mask, broadcastable to ``(B, h, N, M)``.
            cache: a :class:`DecoderCache` to read and extend while generating.
            return_attention: also return the self-attention weights.

        Returns:
            ``(B, N, D)``, and the weights ``(B, h, N, P + N)`` with
            ``return_attention``.
        """
        if (context is not None) != self.has_cross_attention:
            raise ValueError(
                "this block was built with cross_attention=True and needs a context "
                "(B, M, D)"
                if self.has_cross_attention
                else "this block has no cross-attention; build it with "
                "cross_attention=True to pass a context"
            )
        self_cache, cross_cache = (
            (None, None) if cache is None else (cache.self_attn, cache.cross_attn)
        )
        h = self.norm1(x) if self.norm_first else x
        attended = self.attn(
            h,
            mask=mask,
            causal=True,
            cache=self_cache,
            return_attention=return_attention,
        )
        attended, weights = attended if return_attention else (attended, None)
        x = self._add(x, self.drop(attended), self.norm1)
        if context is not None:
            h = self.norm_cross(x) if self.norm_first else x
            crossed = self.cross_attn(
                h, context=context, mask=context_mask, cache=cross_cache
            )
            x = self._add(x, self.drop(crossed), self.norm_cross)
        h = self.norm2(x) if self.norm_first else x
        x = self._add(x, self.mlp(h), self.norm2)  # the MLP applies its own dropout
        return (x, weights) if return_attention else x
