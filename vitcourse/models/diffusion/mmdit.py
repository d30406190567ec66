"""Stable Diffusion 3's MM-DiT block: one attention over text and image tokens together.

DiT conditions on a class through adaLN only. Stable Diffusion 3 (Esser et al., 2024)
conditions on a whole prompt, and instead of cross-attention (image queries, text keys)
it lets both modalities attend **jointly**: each stream keeps its own weights (its own
Q, K, V projections, output projection, MLP and adaLN modulation), but the queries,
keys and values of the text tokens and of the image tokens are concatenated into one
sequence before the softmax, so every image token can attend to every text token and
the other way round:

    [q_c; q_x], [k_c; k_x], [v_c; v_x]  →  softmax(q kᵀ / √d) v  →  split → own output projections

Each stream's projections are a :class:`~vitcourse.layers.MultiHeadAttention`'s
``qkv`` and ``proj``; the softmax is the course's one
:func:`~vitcourse.layers.scaled_dot_product_attention`. SD3's other details (RMS norm
on Q and K in 3.5, the last block's text stream without an output) are left out.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from ...layers import MLP, MultiHeadAttention, scaled_dot_product_attention
from .dit import modulate

__all__ = ["MMDiTBlock", "joint_attention"]


def joint_attention(
    attn_c: MultiHeadAttention,
    attn_x: MultiHeadAttention,
    c: torch.Tensor,
    x: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Attention over the concatenation of text tokens ``c`` and image tokens ``x``.

    Args:
        attn_c: the text stream's projections (``qkv``, ``proj``).
        attn_x: the image stream's, same ``embed_dim`` and ``num_heads``.
        c: text tokens ``(B, Nc, D)``.
        x: image tokens ``(B, Nx, D)``.

    Returns:
        ``(c_out (B, Nc, D), x_out (B, Nx, D), weights (B, h, Nc + Nx, Nc + Nx))``; in
        ``weights`` the text tokens come first.
    """
    if (
        c.shape[0] != x.shape[0]
        or c.shape[-1] != x.shape[-1]
        or attn_c.num_heads != attn_x.num_heads
    ):
        raise ValueError(
            f"text (B, Nc, D) and image (B, Nx, D) tokens must share B and D, and both "
            f"streams the heads; got {tuple(c.shape)}, {tuple(x.shape)}, heads "
            f"{attn_c.num_heads} and {attn_x.num_heads}"
        )
    B, Nc, _ = c.shape
    h, hd = attn_x.num_heads, attn_x.head_dim

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(B, -1, 3, h, hd).permute(2, 0, 3, 1, 4)  # (3, B, h, N, hd)

    # (3, B, h, Nc + Nx, hd)
    qkv = torch.cat([heads(attn_c.qkv(c)), heads(attn_x.qkv(x))], dim=3)
    # (B, h, Nc + Nx, hd)
    out, weights = scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
    out = out.transpose(1, 2).flatten(2)  # (B, Nc + Nx, D)
    return attn_c.proj(out[:, :Nc]), attn_x.proj(out[:, Nc:]), weights


class MMDiTBlock(nn.Module):
    """One MM-DiT block: two streams with their own weights, one joint attention.

    Args:
        embed_dim: ``D`` of both streams.
        num_heads: attention heads.
        mlp_ratio: MLP hidden size over ``D``.

    Shapes:
        ``c`` ``(B, Nc, D)`` text, ``x`` ``(B, Nx, D)`` image, ``y`` ``(B, D)`` the
        conditioning vector (timestep + pooled text) → ``(c, x)`` of the same shapes.
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(embed_dim * mlp_ratio)
        gelu_tanh = partial(nn.GELU, approximate="tanh")

        def stream() -> nn.ModuleDict:
            return nn.ModuleDict({
                "norm1": nn.LayerNorm(embed_dim, elementwise_affine=False, eps=1e-6),
                "attn": MultiHeadAttention(embed_dim, num_heads),
                "norm2": nn.LayerNorm(embed_dim, elementwise_affine=False, eps=1e-6),
                "mlp": MLP(embed_dim, hidden, act_layer=gelu_tanh),
                "adaLN_modulation": nn.Sequential(nn.SiLU(), nn.Linear(embed_dim, 6 * embed_dim)),
            })  # fmt: skip

        self.context, self.image = stream(), stream()

    def forward(
        self, c: torch.Tensor, x: torch.Tensor, y: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """Modulate each stream, attend jointly, then each stream's gated MLP.

        Returns:
            ``(c, x)``, plus the joint attention weights with ``return_attention``.
        """
        mods = []
        for s, tokens in ((self.context, c), (self.image, x)):
            shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = s["adaLN_modulation"](y).chunk(6, dim=-1)
            mods.append((modulate(s["norm1"](tokens), shift_msa, scale_msa), gate_msa, shift_mlp, scale_mlp, gate_mlp))
        attn_c, attn_x, weights = joint_attention(self.context["attn"], self.image["attn"], mods[0][0], mods[1][0])
        outputs = []
        for s, tokens, attended, (_, gate_msa, shift_mlp, scale_mlp, gate_mlp) in zip(
            (self.context, self.image), (c, x), (attn_c, attn_x), mods
        ):
            tokens = tokens + gate_msa[:, None] * attended
            tokens = tokens + gate_mlp[:, None] * s["mlp"](modulate(s["norm2"](tokens), shift_mlp, scale_mlp))
            outputs.append(tokens)
        return (*outputs, weights) if return_attention else tuple(outputs)
