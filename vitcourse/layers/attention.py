"""Scaled dot-product attention and multi-head attention, written out once.

``Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V``. The function below is that line and
nothing else; it is what the book shows. :class:`MultiHeadAttention` uses it when
the caller asks for the attention weights, and PyTorch's fused
``F.scaled_dot_product_attention`` otherwise (same numbers, less memory and time);
a test proves the two paths agree.

Masks follow ``F.scaled_dot_product_attention``: a boolean mask is ``True`` where a
query **may** attend to a key; a float mask is added to the scores.

Detection transformers (DETR, RT-DETR) give positions to the queries and keys only:
``Q = (x + p_q) W^Q``, ``K = (c + p_k) W^K``, ``V = c W^V``, so that *where* a token
is steers whom it attends to but is not mixed into *what* it passes on.
:class:`MultiHeadAttention` takes those positions as ``query_pos`` and ``key_pos``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MultiHeadAttention", "causal_mask", "scaled_dot_product_attention"]


def causal_mask(num_tokens: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean ``(N, N)`` mask where token ``i`` may attend to tokens ``0..i`` only."""
    return torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=device).tril()


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention by hand: ``softmax(q @ kᵀ / √d_k) @ v``.

    Args:
        q: queries ``(..., Nq, d_k)``.
        k: keys ``(..., Nk, d_k)``.
        v: values ``(..., Nk, d_v)``.
        mask: optional, broadcastable to ``(..., Nq, Nk)``; boolean (``True`` = may
            attend) or float (added to the scores, ``-inf`` blocks).

    Returns:
        ``(out, weights)``: ``out`` is ``(..., Nq, d_v)``; ``weights`` is
        ``(..., Nq, Nk)`` and each row sums to 1.
    """
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"q, k, v must be (..., Nq, d_k), (..., Nk, d_k), (..., Nk, d_v); got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    d_k = q.shape[-1]
    # Dividing by sqrt(d_k) keeps the scores' variance near 1 whatever d_k is, so the
    # softmax doesn't saturate into a one-hot with vanishing gradients.
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., Nq, Nk)
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    weights = scores.softmax(dim=-1)  # (..., Nq, Nk)
    return weights @ v, weights  # (..., Nq, d_v)


class MultiHeadAttention(nn.Module):
    """Multi-head attention: ``Concat(head_1, …, head_h) W^O`` with ``head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)``.

    Self-attention when ``context`` is None (queries, keys and values all come from
    ``x``); cross-attention otherwise (queries from ``x``, keys and values from
    ``context``). The three input projections live in one ``(3D, D)`` matrix,
    ``qkv``, laid out ``[W^Q; W^K; W^V]`` like ``nn.MultiheadAttention.in_proj_weight``
    and timm's ``qkv``; cross-attention uses its slices.

    Args:
        embed_dim: token dimension ``D``.
        num_heads: number of heads ``h``; ``D`` must be divisible by ``h``.
        qkv_bias: add a bias to the Q, K, V projections.
        dropout: dropout on the attention weights during training.

    Shapes:
        ``x`` ``(B, Nq, D)``, ``context`` ``(B, Nk, D)``, ``mask`` broadcastable to
        ``(B, h, Nq, Nk)`` (a 3-D mask ``(B, Nq, Nk)`` is applied to every head) →
        output ``(B, Nq, D)``, and weights ``(B, h, Nq, Nk)`` when asked for.
    """

    def __init__(self, embed_dim: int, num_heads: int, qkv_bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(
                f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}; each head gets "
                f"embed_dim // num_heads dimensions, so pick e.g. num_heads in "
                f"{[h for h in range(1, min(embed_dim, 16) + 1) if embed_dim % h == 0]}"
            )
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim, bias=qkv_bias)
        self.proj = nn.Linear(embed_dim, embed_dim)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, head_dim={self.head_dim}"

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        return x.view(B, N, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, N, hd)

    def _project(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None,
        query_pos: torch.Tensor | None = None,
        key_pos: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        if context is None and query_pos is None and key_pos is None:
            q, k, v = self.qkv(x).chunk(3, dim=-1)  # 3 × (B, N, D): one fused matmul
            return self._split_heads(q), self._split_heads(k), self._split_heads(v)
        D, weight, bias = self.embed_dim, self.qkv.weight, self.qkv.bias
        source = x if context is None else context
        q_in = x if query_pos is None else x + query_pos
        k_in = source if key_pos is None else source + key_pos
        if context is None and query_pos is key_pos:
            # DETR's self-attention: the same positions on Q and K, so one matmul makes both
            qk = F.linear(q_in, weight[: 2 * D], None if bias is None else bias[: 2 * D])
            q, k = qk.chunk(2, dim=-1)  # 2 × (B, N, D)
        else:
            q = F.linear(q_in, weight[:D], None if bias is None else bias[:D])  # (B, Nq, D)
            k = F.linear(k_in, weight[D : 2 * D], None if bias is None else bias[D : 2 * D])  # (B, Nk, D)
        v = F.linear(source, weight[2 * D :], None if bias is None else bias[2 * D :])  # (B, Nk, D)
        return self._split_heads(q), self._split_heads(k), self._split_heads(v)

    def _check_inputs(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None,
        query_pos: torch.Tensor | None = None,
        key_pos: torch.Tensor | None = None,
    ) -> None:
        for name, t in (("x", x), ("context", context)):
            if t is not None and (t.ndim != 3 or t.shape[-1] != self.embed_dim):
                raise ValueError(
                    f"expected {name} shaped (B, N, {self.embed_dim}) (batch first), got {tuple(t.shape)}"
                )
        if context is not None and context.shape[0] != x.shape[0]:
            raise ValueError(f"x and context must share the batch size, got {x.shape[0]} and {context.shape[0]}")
        keys = x if context is None else context
        for name, pos, tokens in (("query_pos", query_pos, x), ("key_pos", key_pos, keys)):
            if pos is not None and (pos.ndim not in (2, 3) or pos.shape[-2:] != tokens.shape[-2:]):
                raise ValueError(
                    f"{name} must be shaped like the tokens it is added to, (B, N, D) or (N, D) with "
                    f"N, D = {tuple(tokens.shape[-2:])}; got {tuple(pos.shape)}"
                )

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        return_attention: bool = False,
        query_pos: torch.Tensor | None = None,
        key_pos: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``x`` to itself or to ``context``.

        Args:
            x: ``(B, Nq, D)`` queries' tokens.
            context: ``(B, Nk, D)`` keys' and values' tokens, or None for self-attention.
            mask: boolean (``True`` = may attend) or additive float mask, broadcastable
                to ``(B, h, Nq, Nk)``.
            return_attention: also return the attention weights (uses the manual path).
            query_pos: ``(B, Nq, D)`` or ``(Nq, D)`` positions added to ``x`` before the
                query projection only (DETR).
            key_pos: ``(B, Nk, D)`` or ``(Nk, D)`` positions added to the keys' tokens
                before the key projection only; values never get positions.

        Returns:
            ``(B, Nq, D)``, or ``((B, Nq, D), (B, h, Nq, Nk))`` with ``return_attention``.
        """
        self._check_inputs(x, context, query_pos, key_pos)
        B, Nq, D = x.shape
        if mask is not None and mask.ndim == 3:
            mask = mask.unsqueeze(1)  # (B, 1, Nq, Nk): the same mask for every head
        q, k, v = self._project(x, context, query_pos, key_pos)  # (B, h, N, hd) each
        dropout_p = self.dropout if self.training else 0.0
        if return_attention:
            out, weights = scaled_dot_product_attention(q, k, v, mask)
            if dropout_p:
                out = F.dropout(weights, dropout_p) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        out = out.transpose(1, 2).reshape(B, Nq, D)  # (B, Nq, h*hd)
        out = self.proj(out)
        return (out, weights) if return_attention else out
