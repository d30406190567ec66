"""DALL-E's first stage: a discrete VAE that turns an image into a grid of tokens.

A transformer models sequences of tokens, not pixels. DALL-E (Ramesh et al. 2021)
first trains a **discrete variational autoencoder** (dVAE):

* the **encoder** maps a ``32×32`` image to an ``8×8`` grid of logits over ``K`` codes:
  ``q_φ(z | x)``, one categorical distribution per grid cell;
* the **decoder** maps an ``8×8`` grid of codes back to pixels: ``p_θ(x | z)``;
* a code can't be sampled with a gradient, so training uses the **Gumbel-softmax
  relaxation**: ``softmax((logits + g) / τ)`` with Gumbel noise ``g``, a soft one-hot
  that becomes a true one-hot as the temperature ``τ`` goes to 0 (annealed during
  training, from 1 to 1/16 in the paper);
* the loss is the negative ELBO: reconstruction plus ``β · KL(q_φ(z | x) ‖ p(z))``
  with a uniform prior ``p(z)`` in this first stage.

After training, an image's tokens are the most probable code of every cell
(:meth:`DVAE.tokens`); the decoder turns any grid of tokens into an image
(:meth:`DVAE.decode_tokens`). Stage two (:mod:`vitcourse.models.dalle`) learns the
prior over those tokens with a transformer.

Why a dVAE and not a VQ-VAE: a VQ-VAE's encoder picks one code deterministically, so
``q(z | x)`` is a one-hot and the KL term of the bound is a constant (``ln K`` per
cell); the dVAE keeps a real distribution ``q_φ`` whose every term of DALL-E's bound
can be computed (:func:`elbo_terms`).

Our decoder's likelihood is a Gaussian with a fixed ``σ`` around the decoded pixels
(the paper uses a "logit-Laplace" distribution on pixels squeezed into ``(ε, 1 - ε)``);
its log-density is the squared error scaled by ``1 / 2σ²`` plus a constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model

__all__ = [
    "DVAE",
    "DVAEConfig",
    "DVAEOutput",
    "elbo_terms",
    "gaussian_log_likelihood",
    "kl_to_uniform",
]


@dataclass
class DVAEConfig:
    """Hyper-parameters of a :class:`DVAE`.

    Args:
        img_size: image side ``H = W``; a multiple of 4.
        in_chans: image channels ``C``.
        hidden: channels of the first convolution (the second has twice as many).
        num_tokens: codebook size ``K`` (8192 in DALL-E).
        codebook_dim: dimension of each code's embedding in the decoder.
        sigma: standard deviation of the decoder's Gaussian likelihood, in ``[0, 1]``
            pixel units.
        decoder_hidden: the decoder's ``hidden`` (its channels: twice this on the token
            grid, this at half resolution); None: the encoder's ``hidden``.
    """

    img_size: int = 32
    in_chans: int = 3
    hidden: int = 32
    num_tokens: int = 128
    codebook_dim: int = 64
    sigma: float = 0.1
    decoder_hidden: int | None = None

    def __post_init__(self) -> None:
        if self.img_size % 4:
            raise ValueError(
                f"img_size must be a multiple of 4 (two stride-2 steps), "
                f"got {self.img_size}"
            )

    @property
    def grid_size(self) -> int:
        """Side of the token grid, ``img_size / 4``."""
        return self.img_size // 4


class ResBlock(nn.Module):
    """``x + conv(relu(conv(relu(x))))``, keeping the shape ``(B, C, H, W)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class DVAEOutput(NamedTuple):
    """What :meth:`DVAE.forward` returns.

    Attributes:
        recon: ``(B, C, H, W)`` decoded pixel means.
        logits: ``(B, K, h, w)`` the encoder's logits of ``q_φ(z | x)``.
        codes: ``(B, K, h, w)`` the relaxed (or hard) one-hot codes the decoder read.
    """

    recon: torch.Tensor
    logits: torch.Tensor
    codes: torch.Tensor


class DVAE(nn.Module):
    """Discrete VAE: conv encoder → ``K`` logits per cell, codebook + conv decoder.

    Args:
        config: :class:`DVAEConfig`.

    Shapes:
        images ``(B, C, H, W)`` in ``[0, 1]`` → logits ``(B, K, H/4, W/4)``;
        tokens ``(B, (H/4)·(W/4))`` in raster order → images ``(B, C, H, W)``.
    """

    def __init__(self, config: DVAEConfig) -> None:
        super().__init__()
        self.config = c = config
        h, K = c.hidden, c.num_tokens
        self.encoder = nn.Sequential(
            nn.Conv2d(c.in_chans, h, 4, stride=2, padding=1),  # (B, h, H/2, W/2)
            nn.ReLU(),
            nn.Conv2d(h, 2 * h, 4, stride=2, padding=1),  # (B, 2h, H/4, W/4)
            ResBlock(2 * h),
            nn.ReLU(),
            nn.Conv2d(2 * h, K, 1),  # (B, K, H/4, W/4): logits of q(z | x)
        )
        self.codebook = nn.Embedding(K, c.codebook_dim)
        d = c.decoder_hidden or h
        self.decoder = nn.Sequential(
            nn.Conv2d(c.codebook_dim, 2 * d, 3, padding=1),
            ResBlock(2 * d),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * d, d, 4, stride=2, padding=1),  # (B, d, H/2, W/2)
            nn.ReLU(),
            nn.ConvTranspose2d(d, c.in_chans, 4, stride=2, padding=1),  # (B, C, H, W)
        )

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of ``q_φ(z | x)``: ``(B, C, H, W)`` → ``(B, K, H/4, W/4)``."""
        c = self.config
        if images.ndim != 4 or images.shape[1:] != (c.in_chans, c.img_size, c.img_size):
            raise ValueError(
                f"expected images shaped (B, {c.in_chans}, {c.img_size}, {c.img_size}) "
                f"in [0, 1], got {tuple(images.shape)}"
            )
        return self.encoder(images * 2 - 1)  # centred input

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Pixel means from (soft) one-hot codes ``(B, K, h, w)`` → ``(B, C, H, W)``."""
        weight = self.codebook.weight  # (K, d)
        embedded = torch.einsum("bkhw,kd->bdhw", codes, weight)  # (B, d, h, w)
        return torch.sigmoid(self.decoder(embedded))

    def forward(
        self, images: torch.Tensor, tau: float = 1.0, hard: bool = False
    ) -> DVAEOutput:
        """Encode, sample relaxed codes (Gumbel-softmax at temperature ``tau``), decode.

        Args:
            images: ``(B, C, H, W)`` in ``[0, 1]``.
            tau: Gumbel-softmax temperature (1 → 1/16 during training).
            hard: straight-through one-hot samples instead of soft ones.

        Returns:
            :class:`DVAEOutput`.
        """
        logits = self.encode(images)
        codes = F.gumbel_softmax(logits, tau=tau, hard=hard, dim=1)  # (B, K, h, w)
        return DVAEOutput(self.decode(codes), logits, codes)

    @torch.no_grad()
    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Each cell's most probable code, in raster order: ``(B, h·w)`` int64."""
        return self.encode(images).argmax(dim=1).flatten(1)

    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Images from token grids: ``(B, h·w)`` ids in ``[0, K)`` → ``(B, C, H, W)``.
        """
        g, K = self.config.grid_size, self.config.num_tokens
        if tokens.ndim != 2 or tokens.shape[1] != g * g:
            raise ValueError(
                f"expected tokens shaped (B, {g * g}), got {tuple(tokens.shape)}"
            )
        one_hot = F.one_hot(tokens, K).float()  # (B, h·w, K)
        codes = one_hot.transpose(1, 2).reshape(-1, K, g, g)  # (B, K, h, w)
        return self.decode(codes)


def gaussian_log_likelihood(
    images: torch.Tensor, mean: torch.Tensor, sigma: float
) -> torch.Tensor:
    """``ln p_θ(x | z)`` per image, a Gaussian of std ``sigma`` around ``mean``, nats.

    Returns:
        ``(B,)``: ``-Σ (x - μ)² / 2σ² - (n/2) ln(2π σ²)`` over the ``n = C·H·W`` pixels.
    """
    n = images[0].numel()
    squared = ((images - mean) ** 2).flatten(1).sum(dim=1)  # (B,)
    return -squared / (2 * sigma**2) - 0.5 * n * math.log(2 * math.pi * sigma**2)


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """``KL(q_φ(z | x) ‖ uniform)`` per image, summed over the grid cells, in nats.

    For one cell, ``Σ_k q_k ln(q_k K) = ln K - H(q)``: zero when ``q`` is uniform,
    ``ln K`` when it is one-hot.

    Args:
        logits: ``(B, K, h, w)``.

    Returns:
        ``(B,)``.
    """
    log_q = logits.log_softmax(dim=1)  # (B, K, h, w)
    K = logits.shape[1]
    per_cell = (log_q.exp() * (log_q + math.log(K))).sum(dim=1)  # (B, h, w)
    return per_cell.flatten(1).sum(dim=1)


def elbo_terms(
    model: DVAE, images: torch.Tensor, tau: float = 1.0
) -> dict[str, torch.Tensor]:
    """The first stage's bound, ``ln p(x) ≥ E_q[ln p_θ(x | z)] - KL(q_φ(z|x) ‖ p(z))``.

    Args:
        model: the dVAE.
        images: ``(B, C, H, W)`` in ``[0, 1]``.
        tau: Gumbel-softmax temperature of the sample.

    Returns:
        Per image ``(B,)`` tensors: ``reconstruction`` (``ln p_θ(x | z)``, one relaxed
        sample), ``kl`` and ``elbo`` (their difference), in nats.
    """
    out = model(images, tau=tau)
    reconstruction = gaussian_log_likelihood(images, out.recon, model.config.sigma)
    kl = kl_to_uniform(out.logits)
    return {"reconstruction": reconstruction, "kl": kl, "elbo": reconstruction - kl}


@register_model(DVAE)
def dvae_tiny_32() -> DVAEConfig:
    """A CPU-sized dVAE: 32×32 RGB → 8×8 tokens from a codebook of 128 (our sizes)."""
    return DVAEConfig()
