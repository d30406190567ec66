"""Scaled dot-product attention and multi-head attention, written out once.

``Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V``. The function below is that line and
nothing else; it is what the book shows. :class:`MultiHeadAttention` uses it when
the caller asks for the attention weights, and PyTorch's fused
``F.scaled_dot_product_attention`` otherwise (same numbers, less memory and time);
a test proves the two paths agree.

Masks follow ``F.scaled_dot_product_attention``: a boolean mask is ``True`` where a
query **may** attend to a key; a float mask is added to the scores.

A decoder (GPT) generates one token at a time. Recomputing every earlier token's keys
and values at each step repeats work whose result cannot change (the causal mask means
an earlier token never sees a later one), so :class:`KVCache` keeps them: each step
projects only the new token and attends to the stored keys and values. That turns
``T`` steps of ``O(T)`` tokens each into ``T`` steps of one token.

Detection transformers (DETR, RT-DETR) give positions to the queries and keys only:
``Q = (x + p_q) W^Q``, ``K = (c + p_k) W^K``, ``V = c W^V``, so that *where* a token
is steers whom it attends to but is not mixed into *what* it passes on.
:class:`MultiHeadAttention` takes those positions as ``query_pos`` and ``key_pos``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["KVCache", "MultiHeadAttention", "causal_mask", "scaled_dot_product_attention"]


def causal_mask(
    num_tokens: int, device: torch.device | str | None = None, num_past: int = 0
) -> torch.Tensor:
    """Boolean mask where token ``i`` may attend to tokens ``0..i`` only.

    Args:
        num_tokens: new tokens ``N`` (the queries).
        device: where to build the mask.
        num_past: tokens already seen (in a :class:`KVCache`), which every new token
            may attend to; new token ``i`` is token ``num_past + i`` of the sequence.

    Returns:
        ``(N, num_past + N)``; with ``num_past=0`` the square lower triangle.
    """
    ones = torch.ones(
        num_tokens, num_past + num_tokens, dtype=torch.bool, device=device
    )
    return ones.tril(diagonal=num_past)


class KVCache:
    """The keys and values one attention layer has computed so far, for generation.

    Self-attention appends each call's keys and values (:meth:`append`); cross-attention
    stores the projection of its ``context`` once and reuses it while the context stays
    the same (an encoder's output does not change while a decoder generates).

    Attributes:
        k: keys ``(B, h, P, hd)`` or None before the first call.
        v: values ``(B, h, P, hd)`` or None.
    """

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def __len__(self) -> int:
        """``P``, the number of tokens whose keys and values are stored."""
        return 0 if self.k is None else self.k.shape[-2]

    def __repr__(self) -> str:
        return f"KVCache(tokens={len(self)})"

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new tokens' keys and values after the old ones.

        Args:
            k: new keys ``(B, h, N, hd)``.
            v: new values ``(B, h, N, hd)``.

        Returns:
            All keys and values so far, ``(B, h, P + N, hd)`` each.
        """
        if self.k is not None:
            k = torch.cat([self.k, k], dim=-2)  # (B, h, P + N, hd)
            v = torch.cat([self.v, v], dim=-2)
        self.k, self.v = k, v
        return k, v

    def clear(self) -> None:
        """Forget everything (a new sequence, or a context window that slid)."""
        self.k = self.v = None


def _with_causal(mask: torch.Tensor | None, causal: torch.Tensor) -> torch.Tensor:
    """Combine a user's mask with a boolean causal mask (both must allow a pair)."""
    if mask is None:
        return causal
    if mask.dtype == torch.bool:
        return mask & causal
    return mask.masked_fill(~causal, float("-inf"))


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

    SAM's two-way transformer needs two more things, both off by default: a narrower
    attention (``inner_dim`` < ``D``: Q, K, V projected to ``inner_dim``, the output
    projected back to ``D``) and values that come from other tokens than the keys
    (``value``: its keys carry positions, its values don't). SAM's image encoder adds
    a bias computed from the queries (decomposed relative positions,
    ``bias_from_queries``).

    Args:
        embed_dim: token dimension ``D``.
        num_heads: number of heads ``h``; ``inner_dim`` must be divisible by ``h``.
        qkv_bias: add a bias to the Q, K, V projections.
        dropout: dropout on the attention weights during training.
        inner_dim: dimension of Q, K, V (``D`` by default); ``qkv`` is
            ``(3 inner_dim, D)`` and ``proj`` maps ``inner_dim`` back to ``D``.

    Shapes:
        ``x`` ``(B, Nq, D)``, ``context`` ``(B, Nk, D)``, ``mask`` broadcastable to
        ``(B, h, Nq, Nk)`` (a 3-D mask ``(B, Nq, Nk)`` is applied to every head) →
        output ``(B, Nq, D)``, and weights ``(B, h, Nq, Nk)`` when asked for. With a
        :class:`KVCache` holding ``P`` tokens, self-attention's keys are ``P + Nq``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        inner_dim: int | None = None,
    ) -> None:
        super().__init__()
        if inner_dim is not None and inner_dim != embed_dim:
            if inner_dim % num_heads:
                raise ValueError(
                    f"inner_dim={inner_dim} is not divisible by num_heads={num_heads}; each head "
                    f"gets inner_dim // num_heads dimensions: pick num_heads dividing {inner_dim}"
                )
        elif embed_dim % num_heads:
            raise ValueError(
                f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}; each head gets "
                f"embed_dim // num_heads dimensions, so pick e.g. num_heads in "
                f"{[h for h in range(1, min(embed_dim, 16) + 1) if embed_dim % h == 0]}"
            )
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.inner_dim = embed_dim if inner_dim is None else inner_dim
        self.head_dim = self.inner_dim // num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(embed_dim, 3 * self.inner_dim, bias=qkv_bias)
        self.proj = nn.Linear(self.inner_dim, embed_dim)

    def extra_repr(self) -> str:
        inner = f", inner_dim={self.inner_dim}" if self.inner_dim != self.embed_dim else ""
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, head_dim={self.head_dim}{inner}"

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        return x.view(B, N, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, N, hd)

    def _project(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None,
        cache: KVCache | None = None,
        value: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        if context is None:
            q, k, v = self.qkv(x).chunk(3, dim=-1)  # 3 × (B, N, D)
            q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
            if cache is not None:
                k, v = cache.append(k, v)  # (B, h, P + N, hd)
            return q, k, v
        D = self.inner_dim
        bias = self.qkv.bias
        q = F.linear(x, self.qkv.weight[:D], None if bias is None else bias[:D])  # (B, Nq, D)
        if cache is not None and len(cache):  # the context's keys and values, computed once
            return self._split_heads(q), cache.k, cache.v
        if value is None:
            kv = F.linear(context, self.qkv.weight[D:], None if bias is None else bias[D:])  # (B, Nk, 2D)
            k, v = (self._split_heads(t) for t in kv.chunk(2, dim=-1))
        else:  # keys and values from different tokens (SAM: positions on the keys only)
            k = F.linear(context, self.qkv.weight[D : 2 * D], None if bias is None else bias[D : 2 * D])
            v = F.linear(value, self.qkv.weight[2 * D :], None if bias is None else bias[2 * D :])
            k, v = self._split_heads(k), self._split_heads(v)
        if cache is not None:
            cache.append(k, v)
        return self._split_heads(q), k, v

    def _project_with_positions(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None,
        query_pos: torch.Tensor | None,
        key_pos: torch.Tensor | None,
    ) -> tuple[torch.Tensor, ...]:
        """Q from ``x + query_pos``, K from the keys' tokens ``+ key_pos``, V without positions."""
        D, weight, bias = self.inner_dim, self.qkv.weight, self.qkv.bias
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
        value: torch.Tensor | None = None,
        query_pos: torch.Tensor | None = None,
        key_pos: torch.Tensor | None = None,
    ) -> None:
        if value is not None and (context is None or value.shape[:2] != context.shape[:2]):
            raise ValueError(
                "value is for cross-attention: pass context too, with the same (B, Nk) as value; "
                f"got context {None if context is None else tuple(context.shape)}, value {tuple(value.shape)}"
            )
        for name, t in (("x", x), ("context", context), ("value", value)):
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
        causal: bool = False,
        cache: KVCache | None = None,
        value: torch.Tensor | None = None,
        bias_from_queries: Callable[[torch.Tensor], torch.Tensor] | None = None,
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
            causal: self-attention where token ``i`` sees tokens ``0..i`` only (a
                decoder); combined with ``mask`` if both are given.
            cache: a :class:`KVCache` for generation. Self-attention appends this call's
                keys and values and attends to all stored ones (the new tokens come after
                them); cross-attention fills it from ``context`` on the first call and
                reuses it afterwards.
            value: ``(B, Nk, D)`` tokens the values come from, when they are not
                ``context`` (cross-attention only).
            bias_from_queries: a function of the queries ``(B, h, Nq, hd)`` returning a
                float bias broadcastable to ``(B, h, Nq, Nk)`` added to the scores (SAM's
                decomposed relative positions); added to ``mask`` if both are given.
            query_pos: ``(B, Nq, D)`` or ``(Nq, D)`` positions added to ``x`` before the
                query projection only (DETR).
            key_pos: ``(B, Nk, D)`` or ``(Nk, D)`` positions added to the keys' tokens
                before the key projection only; values never get positions.

        Returns:
            ``(B, Nq, D)``, or ``((B, Nq, D), (B, h, Nq, Nk))`` with ``return_attention``.
        """
        self._check_inputs(x, context, value, query_pos, key_pos)
        positions = query_pos is not None or key_pos is not None
        if positions and (cache is not None or value is not None):
            raise ValueError(
                "query_pos/key_pos (DETR) can't be combined with a KVCache (generation) or "
                "a separate value (SAM): add the positions to x or context yourself instead"
            )
        if causal and context is not None:
            raise ValueError(
                "causal=True is for self-attention; cross-attention sees the whole context"
            )
        B, Nq, _ = x.shape
        if mask is not None and mask.ndim == 3:
            mask = mask.unsqueeze(1)  # (B, 1, Nq, Nk): the same mask for every head
        num_past = len(cache) if cache is not None and context is None else 0
        if positions:
            q, k, v = self._project_with_positions(x, context, query_pos, key_pos)
        else:
            q, k, v = self._project(x, context, cache, value)  # (B, h, N, hd) each
        if bias_from_queries is not None:
            extra = bias_from_queries(q)  # (B, h, Nq, Nk)
            if mask is None:
                mask = extra
            elif mask.dtype == torch.bool:
                mask = extra.masked_fill(~mask, float("-inf"))
            else:
                mask = mask + extra
        # Without a cache or a mask, the fused kernel's own causal flag is fastest; with
        # P cached tokens the mask must shift by P (a lone new token may see them all).
        fused_causal = causal and mask is None and num_past == 0 and not return_attention
        if causal and not fused_causal and Nq > 1:
            mask = _with_causal(mask, causal_mask(Nq, x.device, num_past))
        dropout_p = self.dropout if self.training else 0.0
        if return_attention:
            out, weights = scaled_dot_product_attention(q, k, v, mask)
            if dropout_p:
                out = F.dropout(weights, dropout_p) @ v
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=fused_causal
            )
        out = out.transpose(1, 2).reshape(B, Nq, self.inner_dim)  # (B, Nq, h*hd)
        out = self.proj(out)
        return (out, weights) if return_attention else out
