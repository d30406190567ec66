"""SAM 2's memory attention: the current frame reads what the tracker remembers.

Before the mask decoder sees a frame, its features attend to the memory bank. Each
layer is pre-norm, with positions added to queries and keys only (as in SAM's
two-way transformer)::

    x = x + SelfAttn(LN(x) + pos, LN(x) + pos, LN(x))                 the frame itself
    x = x + CrossAttn(LN(x) + pos, memory + memory_pos, memory)       the memories
    x = x + MLP(LN(x))

The memory is the concatenation of every remembered frame's ``g²`` memory tokens and
the object pointers (one token per frame, see :mod:`.memory_bank`); ``memory_pos``
tells each token where it is in its frame and how long ago the frame was. Every
attention is :class:`~vitcourse.layers.MultiHeadAttention`.
"""

from __future__ import annotations

import torch
from torch import nn

from ...layers import MLP, MultiHeadAttention

__all__ = ["MemoryAttention", "MemoryAttentionLayer"]


class MemoryAttentionLayer(nn.Module):
    """Self-attention, cross-attention to the memories, MLP (see the module docstring).

    Args:
        embed_dim: channels ``C`` of the frame tokens and of the memory tokens.
        num_heads: attention heads.
        mlp_dim: hidden size of the MLP.

    Shapes:
        x ``(B, N, C)``, pos ``(B, N, C)``, memory ``(B, M, C)``, memory_pos
        ``(B, M, C)`` → ``(B, N, C)``.
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim)
        self.self_attn = MultiHeadAttention(embed_dim, num_heads)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.cross_attn = MultiHeadAttention(embed_dim, num_heads)
        self.norm3 = nn.LayerNorm(embed_dim)
        self.mlp = MLP(embed_dim, mlp_dim)

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
    ) -> torch.Tensor:
        """Update the frame tokens ``x`` from themselves and the memories."""
        h = self.norm1(x)
        x = x + self.self_attn(h, query_pos=pos, key_pos=pos)
        x = x + self.cross_attn(
            self.norm2(x), context=memory, query_pos=pos, key_pos=memory_pos
        )
        return x + self.mlp(self.norm3(x))


def _init_position_matching(attention: MultiHeadAttention, gain: float) -> None:
    """Start ``W^Q`` and ``W^K`` as ``gain · I``: a token first attends to the same place.

    Queries and keys carry the same positional encoding, so with identity projections
    the score of a frame token and a memory token at the same cell is large from the
    start: each token reads what the remembered frames had at its own place (objects
    move little between frames). SAM 2 gets this bias from rotary positions.
    """
    D = attention.inner_dim
    if D != attention.embed_dim:
        return
    with torch.no_grad():
        attention.qkv.weight[: 2 * D] = gain * torch.eye(D).repeat(2, 1)
        attention.qkv.bias[: 2 * D] = 0.0


class MemoryAttention(nn.Module):
    """``depth`` :class:`MemoryAttentionLayer` s on a frame's features.

    SAM 2 ends with a LayerNorm; here the residual path is left as it is, and the
    self-attention and MLP branches start at zero, so that the features stay close to
    the image encoder's, which the mask decoder (trained for SAM) already reads. The
    cross-attention starts by matching positions (see ``_init_position_matching``).

    Args:
        embed_dim: channels ``C``.
        memory_dim: channels ``C_mem`` of the memories (projected to ``C``).
        depth: layers (4 in SAM 2).
        num_heads: attention heads.
        mlp_ratio: MLP hidden size over ``C``.
        position_gain: the cross-attention's initial ``W^Q = W^K = gain · I``.

    Shapes:
        see :meth:`forward`.
    """

    def __init__(
        self,
        embed_dim: int,
        memory_dim: int,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        position_gain: float = 2.0,
    ) -> None:
        super().__init__()
        self.memory_proj = nn.Linear(memory_dim, embed_dim)
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(embed_dim, num_heads, int(mlp_ratio * embed_dim)) for _ in range(depth)
        )
        for layer in self.layers:
            for last in (layer.self_attn.proj, layer.mlp.fc2):
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)
            _init_position_matching(layer.cross_attn, position_gain)

    def forward(
        self,
        features: torch.Tensor,
        pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
    ) -> torch.Tensor:
        """Condition a frame's features on the memory.

        Args:
            features: ``(B, C, g, g)`` the frame's image-encoder features.
            pos: ``(1, C, g, g)`` their positions.
            memory: ``(B, M, C_mem)`` memory tokens (every remembered frame's ``g²``
                tokens, then the object pointers).
            memory_pos: ``(B, M, C)`` their positions (in the frame and in time).

        Returns:
            ``(B, C, g, g)`` features that know what the tracked object looks like.
        """
        B, C, g, w = features.shape
        if memory.ndim != 3 or memory.shape[0] != B or memory_pos.shape[:2] != memory.shape[:2]:
            raise ValueError(
                f"expected memory (B={B}, M, C_mem) and memory_pos (B, M, {C}), got "
                f"{tuple(memory.shape)} and {tuple(memory_pos.shape)}"
            )
        x = features.flatten(2).transpose(1, 2)  # (B, g·w, C)
        pos = pos.flatten(2).transpose(1, 2).expand(B, -1, -1)  # (B, g·w, C)
        memory = self.memory_proj(memory)  # (B, M, C)
        for layer in self.layers:
            x = layer(x, pos, memory, memory_pos)
        return x.transpose(1, 2).reshape(B, C, g, w)
