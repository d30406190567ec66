"""DETR's transformer: an encoder over the feature map, a decoder over N object queries.

Both are the 2017 Transformer's post-norm layers ("Add & Norm" after each branch),
with one change that matters: positions are added to the **queries and keys** of
every attention, never to the values, and again in every layer, not once at the
input. The encoder's tokens get the 2-D sine code of their cell; the decoder's N
slots get a learned code each, the *object queries*, which is all that tells one
slot from another (the decoder's input itself starts at zero).

The decoder decodes the N objects in parallel: no causal mask, self-attention lets
the slots see each other (so two of them learn not to claim the same object), and
cross-attention lets each look at the image. The output of every decoder layer is
kept (after the shared final LayerNorm), for the auxiliary losses.
"""

from __future__ import annotations

import torch
from torch import nn

from ...layers import MLP, MultiHeadAttention

__all__ = ["DetrDecoderLayer", "DetrEncoderLayer", "DetrTransformer"]


def _key_padding(valid: torch.Tensor | None) -> torch.Tensor | None:
    """``(B, Nk)`` valid tokens → a ``(B, 1, 1, Nk)`` attention mask (None: all valid)."""
    if valid is None or bool(valid.all()):
        return None
    return valid[:, None, None, :]


class DetrEncoderLayer(nn.Module):
    """Self-attention over the image's cells, then an FFN; post-norm.

    Args:
        embed_dim: token width ``D``.
        num_heads: attention heads.
        mlp_dim: hidden width of the FFN (2048 in DETR).
        dropout: on each branch's output and inside the FFN.
        act_layer: the FFN's activation (ReLU in DETR, GELU in RT-DETR's AIFI).

    Shapes:
        ``x`` ``(B, N, D)``, ``pos`` ``(B, N, D)`` or ``(N, D)``, ``valid`` ``(B, N)`` →
        ``(B, N, D)``.
    """

    def __init__(
        self, embed_dim: int, num_heads: int, mlp_dim: int, dropout: float = 0.1,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:  # fmt: skip
        super().__init__()
        self.self_attn = MultiHeadAttention(embed_dim, num_heads)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.mlp = MLP(embed_dim, mlp_dim, act_layer=act_layer, dropout=dropout)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Run the layer (see the class docstring)."""
        attended = self.self_attn(x, mask=_key_padding(valid), query_pos=pos, key_pos=pos)
        x = self.norm1(x + self.drop(attended))
        return self.norm2(x + self.mlp(x))


class DetrDecoderLayer(nn.Module):
    """Self-attention among the object queries, cross-attention to the image, FFN.

    Args:
        embed_dim, num_heads, mlp_dim, dropout: as in :class:`DetrEncoderLayer`.

    Shapes:
        ``tgt`` ``(B, N, D)`` (the N slots), ``memory`` ``(B, M, D)`` (the encoded
        image), ``query_pos`` ``(N, D)`` or ``(B, N, D)``, ``pos`` ``(B, M, D)`` →
        ``(B, N, D)``.
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(embed_dim, num_heads)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.cross_attn = MultiHeadAttention(embed_dim, num_heads)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = MLP(embed_dim, mlp_dim, act_layer=nn.ReLU, dropout=dropout)
        self.norm3 = nn.LayerNorm(embed_dim)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        query_pos: torch.Tensor,
        pos: torch.Tensor,
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the layer (see the class docstring)."""
        attended = self.self_attn(tgt, query_pos=query_pos, key_pos=query_pos)
        tgt = self.norm1(tgt + self.drop(attended))
        attended = self.cross_attn(
            tgt, memory, mask=_key_padding(valid), query_pos=query_pos, key_pos=pos
        )
        tgt = self.norm2(tgt + self.drop(attended))
        return self.norm3(tgt + self.mlp(tgt))


class DetrTransformer(nn.Module):
    """The encoder stack, the decoder stack and the decoder's final LayerNorm.

    Args:
        embed_dim: token width ``D``.
        num_heads: attention heads (both stacks).
        enc_depth: encoder layers (6 in DETR).
        dec_depth: decoder layers (6 in DETR).
        mlp_dim: FFN hidden width.
        dropout: dropout rate.

    Shapes:
        ``src`` ``(B, M, D)`` image tokens, ``pos`` ``(B, M, D)`` their positions,
        ``query_pos`` ``(N, D)`` the object queries, ``valid`` ``(B, M)`` →
        ``(hs, memory)``: every decoder layer's normalised output ``(L, B, N, D)``
        and the encoded image ``(B, M, D)``.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_heads: int = 8,
        enc_depth: int = 6,
        dec_depth: int = 6,
        mlp_dim: int = 2048,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = nn.ModuleList(
            DetrEncoderLayer(embed_dim, num_heads, mlp_dim, dropout) for _ in range(enc_depth)
        )
        self.decoder = nn.ModuleList(
            DetrDecoderLayer(embed_dim, num_heads, mlp_dim, dropout) for _ in range(dec_depth)
        )
        self.decoder_norm = nn.LayerNorm(embed_dim)

    def encode(
        self, src: torch.Tensor, pos: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The encoder alone: ``(B, M, D)`` → ``(B, M, D)``."""
        for layer in self.encoder:
            src = layer(src, pos, valid)
        return src

    def decode(
        self,
        memory: torch.Tensor,
        query_pos: torch.Tensor,
        pos: torch.Tensor,
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The decoder alone: every layer's normalised output ``(L, B, N, D)``."""
        B, (N, D) = memory.shape[0], query_pos.shape[-2:]
        tgt = memory.new_zeros(B, N, D)  # the slots start empty; only query_pos differs
        outputs = []
        for layer in self.decoder:
            tgt = layer(tgt, memory, query_pos, pos, valid)
            outputs.append(self.decoder_norm(tgt))
        return torch.stack(outputs)  # (L, B, N, D)

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
        valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the image, decode the queries (see the class docstring)."""
        memory = self.encode(src, pos, valid)
        return self.decode(memory, query_pos, pos, valid), memory
