"""A small Diffusion Transformer (DiT, Peebles and Xie, 2023) from the course's layers.

DiT denoises with a plain ViT: the noisy image is cut into patches
(:class:`~vitcourse.layers.PatchEmbedding`), fixed 2-D sin/cos positions are added,
and a stack of blocks predicts the noise ``ε`` of every patch, which the final layer
turns back into an image (:func:`~vitcourse.layers.unpatchify`). What is new is how the
timestep ``t`` and the class ``y`` enter: their embeddings are summed into one vector
``c``, and every block *modulates* its layer norms with it (adaLN):

    shift, scale, gate = Linear(SiLU(c))            # one triple for attention, one for the MLP
    x = x + gate · Attention(LN(x) · (1 + scale) + shift)

The linear that makes ``shift, scale, gate`` starts at zero (adaLN-**Zero**), so every
block starts as the identity and the model learns to use each one gradually.

For classifier-free guidance (Ho and Salimans, 2021) the class embedding has one more
row, the "no class" label ``num_classes``: training replaces a fraction of the labels
by it (:attr:`DiTConfig.class_dropout`), so one network learns both ``ε(x_t, t, y)``
and ``ε(x_t, t, ∅)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ...layers import MLP, MultiHeadAttention, PatchEmbedding, sincos_2d_encoding, unpatchify
from ..registry import register_model

__all__ = ["DiT", "DiTBlock", "DiTConfig", "FinalLayer", "TimestepEmbedder", "modulate", "timestep_embedding"]


@dataclass
class DiTConfig:
    """Sizes of a :class:`DiT`.

    Attributes:
        img_size: side ``H = W`` of the (square) images.
        patch_size: side ``P`` of the patches; must divide ``img_size``.
        in_chans: image channels ``C``.
        embed_dim: token dimension ``D``.
        depth: number of DiT blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden size over ``D``.
        num_classes: classes of the conditioning; the label ``num_classes`` means "none".
        class_dropout: fraction of labels replaced by "none" while training.
        freq_dim: size of the sinusoidal code of ``t`` before its MLP.
    """

    img_size: int = 28
    patch_size: int = 4
    in_chans: int = 1
    embed_dim: int = 128
    depth: int = 6
    num_heads: int = 4
    mlp_ratio: float = 4.0
    num_classes: int = 10
    class_dropout: float = 0.1
    freq_dim: int = 256


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN's affine map: ``x · (1 + scale) + shift``, one ``(B, D)`` pair per image.

    Args:
        x: tokens ``(B, N, D)``.
        shift, scale: ``(B, D)``, broadcast over the tokens.

    Returns:
        ``(B, N, D)``.
    """
    return x * (1 + scale[:, None]) + shift[:, None]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """DiT's sinusoidal code of the (possibly fractional) timesteps: ``[cos(t ω) | sin(t ω)]``.

    The frequencies are ``ω_i = max_period^(-i / (dim/2))``, ``i = 0 … dim/2 - 1``, as in
    the DiT and ADM code (``diffusers``' ``Timesteps`` with ``downscale_freq_shift=1``
    divides by ``dim/2 - 1`` instead; the test of the port shows the difference).

    Args:
        t: ``(B,)`` timesteps.
        dim: code size (even).

    Returns:
        ``(B, dim)`` float32.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # (B, dim/2)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedder(nn.Module):
    """``t`` → its sinusoidal code → a two-layer MLP with SiLU → ``(B, D)``.

    Args:
        embed_dim: output size ``D``.
        freq_dim: size of the sinusoidal code.
    """

    def __init__(self, embed_dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Embed timesteps ``(B,)`` as ``(B, D)``."""
        return self.mlp(timestep_embedding(t, self.freq_dim))


class DiTBlock(nn.Module):
    """A Transformer block whose two layer norms are modulated by the conditioning
    ``c``.

    Attention and MLP are the course's (:class:`~vitcourse.layers.MultiHeadAttention`,
    :class:`~vitcourse.layers.MLP` with tanh-GELU as in DiT); the layer norms have no
    parameters of their own: ``shift``, ``scale`` and ``gate`` come from ``c``.

    Args:
        embed_dim: ``D``.
        num_heads: attention heads.
        mlp_ratio: MLP hidden size over ``D``.

    Shapes:
        ``x`` ``(B, N, D)``, ``c`` ``(B, D)`` → ``(B, N, D)``.
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim, elementwise_affine=False, eps=1e-6)
        self.attn = MultiHeadAttention(embed_dim, num_heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(embed_dim, elementwise_affine=False, eps=1e-6)
        gelu_tanh = partial(nn.GELU, approximate="tanh")
        self.mlp = MLP(embed_dim, int(embed_dim * mlp_ratio), act_layer=gelu_tanh)
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(), nn.Linear(embed_dim, 6 * embed_dim)
        )

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Attention then MLP, each on a modulated norm and gated on the way back."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.adaLN_modulation(c).chunk(6, dim=-1)
        )
        x = x + gate_msa[:, None] * self.attn(
            modulate(self.norm1(x), shift_msa, scale_msa)
        )
        x = x + gate_mlp[:, None] * self.mlp(
            modulate(self.norm2(x), shift_mlp, scale_mlp)
        )
        return x


class FinalLayer(nn.Module):
    """Modulated layer norm, then a linear to the ``P·P·C`` values of each patch.

    Shapes:
        ``x`` ``(B, N, D)``, ``c`` ``(B, D)`` → ``(B, N, P·P·C)``.
    """

    def __init__(self, embed_dim: int, patch_size: int, out_chans: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(embed_dim, 2 * embed_dim))
        self.linear = nn.Linear(embed_dim, patch_size * patch_size * out_chans)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Predict every patch's noise."""
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DiT(nn.Module):
    """Class-conditional DiT predicting the noise ``ε`` of noisy images.

    Args:
        config: a :class:`DiTConfig`.

    Shapes:
        ``x_t`` ``(B, C, H, W)``, ``t`` ``(B,)``, ``labels`` ``(B,)`` → ``ε̂`` ``(B, C, H, W)``.
    """

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        if config.img_size % config.patch_size:
            raise ValueError(
                f"patch_size={config.patch_size} must divide img_size={config.img_size}; "
                f"for 28x28 images use patch_size 2, 4, 7 or 14"
            )
        self.config = config
        D = config.embed_dim
        self.patch_embed = PatchEmbedding(config.img_size, config.patch_size, config.in_chans, D)
        gh, gw = self.patch_embed.grid_size
        # fixed, not learned (as in DiT); a buffer so a port can copy another layout in
        self.register_buffer("pos_embed", sincos_2d_encoding(gh, gw, D)[None])  # (1, N, D)
        self.t_embedder = TimestepEmbedder(D, config.freq_dim)
        self.y_embedder = nn.Embedding(config.num_classes + 1, D)  # the last row: "no class"
        self.blocks = nn.ModuleList(
            [DiTBlock(D, config.num_heads, config.mlp_ratio) for _ in range(config.depth)]
        )
        self.final_layer = FinalLayer(D, config.patch_size, config.in_chans)
        self._init_weights()

    @property
    def null_label(self) -> int:
        """The label meaning "no class" (unconditional), ``num_classes``."""
        return self.config.num_classes

    def _init_weights(self) -> None:
        """DiT's initialisation: Xavier linears, N(0, 0.02) embeddings, adaLN-Zero."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.y_embedder.weight, std=0.02)
        for layer in self.t_embedder.mlp[0], self.t_embedder.mlp[2]:
            nn.init.normal_(layer.weight, std=0.02)
        for block in self.blocks:  # zero: each block starts as the identity
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        for layer in self.final_layer.adaLN_modulation[-1], self.final_layer.linear:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def drop_labels(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Replace a ``class_dropout`` fraction of ``labels`` by :attr:`null_label` (training only)."""
        drop = torch.rand(labels.shape, generator=generator).to(labels.device) < self.config.class_dropout
        return torch.where(drop, torch.full_like(labels, self.null_label), labels)

    def condition(self, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The conditioning vector ``c = embed(t) + embed(y)``, ``(B, D)``."""
        return self.t_embedder(t) + self.y_embedder(labels)

    def forward(
        self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Predict the noise in ``x_t``.

        Args:
            x_t: noisy images ``(B, C, H, W)``.
            t: timesteps ``(B,)``.
            labels: classes ``(B,)`` in ``[0, num_classes]`` (``num_classes``: none). In
                training mode a ``class_dropout`` fraction is dropped to "none".

        Returns:
            ``ε̂``, ``(B, C, H, W)``.
        """
        if (
            labels.shape != (x_t.shape[0],)
            or int(labels.max()) > self.null_label
            or int(labels.min()) < 0
        ):
            raise ValueError(
                f"labels must be ({x_t.shape[0]},) ints in [0, {self.null_label}] "
                f"({self.null_label} = no class); got shape {tuple(labels.shape)}"
            )
        if self.training and self.config.class_dropout > 0:
            labels = self.drop_labels(labels)
        x = self.patch_embed(x_t) + self.pos_embed  # (B, N, D)
        c = self.condition(t, labels)  # (B, D)
        for block in self.blocks:
            x = block(x, c)
        patches = self.final_layer(x, c)  # (B, N, P*P*C)
        cfg = self.config
        # (B, C, H, W)
        return unpatchify(patches, cfg.patch_size, self.patch_embed.grid_size, cfg.in_chans)


@register_model(DiT)
def dit_fashion_tiny() -> DiTConfig:
    """The shipped Fashion-MNIST DiT: 28x28 grey, 4x4 patches (49 tokens), D=128, 6 blocks."""
    return DiTConfig()
