"""ImageGPT (Chen et al. 2020): GPT-2 reading and writing an image pixel by pixel.

Three steps turn an image into a language model's text:

1. a **colour palette**: k-means over the training pixels gives ``k`` colours (512 in
   the paper, from RGB); every pixel becomes the index of its nearest colour
   (:class:`ColorPalette`);
2. **raster order**: the ``H·W`` indices are read row by row, left to right, the
   permutation ``π`` of the slide; a start token (id ``k``) goes in front;
3. **autoregressive density**: a GPT with ImageGPT's differences (a LayerNorm without
   mean or bias, an output layer not tied to the input embedding, the start token
   never predicted: :class:`~vitcourse.models.GPTConfig`'s ``norm="rmsnorm"``,
   ``lm_head="untied"``, ``start_token=True``) models

       p(x) = ∏ᵢ p(x_{πᵢ} | x_{π₁}, …, x_{πᵢ₋₁}),   L_AR = E_x[-ln p(x)]

   (:func:`log_likelihood`, :func:`autoregressive_loss`).

A trained model completes a half-image (:func:`complete`), and its hidden states,
averaged over the pixels, are features a linear classifier can read
(:func:`features`): the paper's point, that learning to generate teaches to recognise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .gpt import GPT, GPTConfig
from .registry import register_model

__all__ = [
    "ColorPalette",
    "autoregressive_loss",
    "complete",
    "features",
    "log_likelihood",
    "shift_in",
]


class ColorPalette:
    """``k`` colours from k-means; images to colour indices and back.

    Args:
        centers: ``(k, C)`` the palette's colours, in the images' units.

    Shapes:
        images ``(B, C, H, W)`` ↔ tokens ``(B, H·W)`` (raster order) in ``[0, k)``.
    """

    def __init__(self, centers: torch.Tensor) -> None:
        if centers.ndim != 2:
            raise ValueError(f"centers must be (k, C), got {tuple(centers.shape)}")
        self.centers = centers.float()

    def __len__(self) -> int:
        return self.centers.shape[0]

    @classmethod
    def fit(
        cls, images: torch.Tensor, k: int, samples: int = 20_000, seed: int = 0
    ) -> "ColorPalette":
        """Cluster the colours of ``samples`` random pixels of ``images`` into ``k``.

        Args:
            images: ``(N, C, H, W)``.
            k: palette size.
            samples: pixels drawn for k-means (all of them when there are fewer).
            seed: seeds the draw and k-means.

        Returns:
            The palette, colours sorted by brightness (index 0 the darkest).
        """
        from sklearn.cluster import KMeans

        C = images.shape[1]
        pixels = images.permute(0, 2, 3, 1).reshape(-1, C)  # (N·H·W, C)
        generator = torch.Generator().manual_seed(seed)
        if len(pixels) > samples:
            pixels = pixels[torch.randperm(len(pixels), generator=generator)[:samples]]
        kmeans = KMeans(n_clusters=k, n_init=4, random_state=seed)
        kmeans.fit(pixels.double().numpy())
        centers = torch.from_numpy(kmeans.cluster_centers_).float()  # (k, C)
        return cls(centers[centers.mean(dim=1).argsort()])

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Nearest palette colour of every pixel: ``(B, C, H, W)`` → ``(B, H·W)``."""
        B, C, H, W = images.shape
        if C != self.centers.shape[1]:
            raise ValueError(
                f"the palette has {self.centers.shape[1]} channels, the images {C}"
            )
        pixels = images.permute(0, 2, 3, 1).reshape(B, H * W, C)  # raster order
        distances = torch.cdist(pixels, self.centers.expand(B, -1, -1))  # (B, H·W, k)
        return distances.argmin(dim=-1)

    def decode(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Palette colours back into images: ``(B, H·W)`` → ``(B, C, H, W)``."""
        B = tokens.shape[0]
        colors = self.centers[tokens]  # (B, H·W, C)
        return colors.reshape(B, height, width, -1).permute(0, 3, 1, 2)


def shift_in(tokens: torch.Tensor, start_token: int) -> torch.Tensor:
    """The model's input for predicting ``tokens``: the start token, then all but
    the last.

    Position ``i`` of the input holds ``x_{i-1}`` (the start token for ``i = 0``),
    so the logits at ``i`` are ``p(x_i | x_{<i})``.

    Args:
        tokens: ``(B, n)`` pixel tokens.
        start_token: its id (``vocab_size - 1``).

    Returns:
        ``(B, n)``.
    """
    start = torch.full_like(tokens[:, :1], start_token)
    return torch.cat([start, tokens[:, :-1]], dim=1)


def log_likelihood(model: GPT, tokens: torch.Tensor) -> torch.Tensor:
    """``ln p(x) = Σᵢ ln p(x_i | x_{<i})`` per image, in nats (the slide's density).

    Args:
        model: an ImageGPT (a :class:`~vitcourse.models.GPT` with ``start_token``).
        tokens: ``(B, n)`` pixel tokens in raster order.

    Returns:
        ``(B,)``.
    """
    logits = model(shift_in(tokens, model.config.vocab_size - 1))  # (B, n, k)
    log_probs = logits.log_softmax(dim=-1)
    return log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(dim=1)


def autoregressive_loss(model: GPT, tokens: torch.Tensor) -> torch.Tensor:
    """``L_AR`` per pixel: the mean of ``-ln p(x_i | x_{<i})`` over pixels, images."""
    logits = model(shift_in(tokens, model.config.vocab_size - 1))  # (B, n, k)
    return F.cross_entropy(logits.transpose(1, 2), tokens)


@torch.no_grad()
def complete(
    model: GPT,
    tokens: torch.Tensor,
    num_given: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Keep the first ``num_given`` pixels (raster order) and sample the rest.

    Args:
        model: an ImageGPT.
        tokens: ``(B, n)``; only the first ``num_given`` are read.
        num_given: pixels kept (``n // 2`` keeps the upper half).
        temperature, top_k, generator: sampling (see :meth:`GPT.generate`).

    Returns:
        ``(B, n)`` with the same first ``num_given`` tokens.
    """
    model.eval()
    n = tokens.shape[1]
    start = torch.full_like(tokens[:, :1], model.config.vocab_size - 1)
    prompt = torch.cat([start, tokens[:, :num_given]], dim=1)  # (B, 1 + num_given)
    out = model.generate(
        prompt, n - num_given, temperature=temperature, top_k=top_k, generator=generator
    )
    return out[:, 1:]


@torch.no_grad()
def features(
    model: GPT, tokens: torch.Tensor, num_blocks: int | None = None, batch_size: int = 256
) -> torch.Tensor:
    """One vector per image: normalised hidden states averaged over the pixels.

    Args:
        model: an ImageGPT.
        tokens: ``(B, n)`` pixel tokens.
        num_blocks: read the states after this many blocks (the paper finds the best
            features in the middle of the network); default: after the last one.
        batch_size: images per forward pass.

    Returns:
        ``(B, D)``.
    """
    model.eval()
    start = model.config.vocab_size - 1
    out = []
    for i in range(0, len(tokens), batch_size):
        inputs = shift_in(tokens[i : i + batch_size], start)
        states = model.hidden_states(inputs, num_blocks=num_blocks)  # (b, n, D)
        out.append(states.mean(dim=1))
    return torch.cat(out)


# -- presets -------------------------------------------------------------------------
# The released models (Hugging Face's ImageGPTConfig: 512 colours + start token,
# 32×32 = 1024 positions, quick GELU) and a CPU size (our numbers).


def _imagegpt(
    embed_dim: int, depth: int, num_heads: int, colors: int = 512, side: int = 32
) -> GPTConfig:
    return GPTConfig(
        vocab_size=colors + 1,
        max_seq_len=side * side,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        activation="quick_gelu",
        norm="rmsnorm",
        lm_head="untied",
        start_token=True,
    )


@register_model(GPT)
def imagegpt_small() -> GPTConfig:
    """ImageGPT-S (``openai/imagegpt-small``): 24 blocks, D=512, 8 heads."""
    return _imagegpt(512, 24, 8)


@register_model(GPT)
def imagegpt_medium() -> GPTConfig:
    """ImageGPT-M (``openai/imagegpt-medium``): 36 blocks, D=1024, 8 heads."""
    return _imagegpt(1024, 36, 8)


@register_model(GPT)
def imagegpt_large() -> GPTConfig:
    """ImageGPT-L (``openai/imagegpt-large``): 48 blocks, D=1536, 16 heads."""
    return _imagegpt(1536, 48, 16)


@register_model(GPT)
def imagegpt_tiny_14() -> GPTConfig:
    """A CPU-sized ImageGPT for 14×14 images in 16 grey levels: 4 blocks, D=64."""
    config = _imagegpt(64, 4, 4, colors=16, side=14)
    config.dropout = config.attn_dropout = 0.0
    return config
