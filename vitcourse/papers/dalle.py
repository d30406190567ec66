"""DALL-E's numbers (Ramesh et al. 2021, "Zero-Shot Text-to-Image Generation").

The slide gives the two stages and the bound; these are the sizes and schedules the
paper states in its Sections 2.1 and 2.2 (and that the book's tiny version scales down).
"""

from __future__ import annotations

from . import Source

__all__ = ["RERANKING", "RERANKING_SOURCE", "STAGES", "STAGES_SOURCE"]

STAGES_SOURCE = Source(
    authors="Ramesh et al.",
    year=2021,
    title="Zero-Shot Text-to-Image Generation",
    arxiv="2102.12092",
    where="Sections 2.1 and 2.2",
    bibkey="ramesh2021dalle",
)
STAGES: dict = {
    "image_size": 256,
    "image_grid": 32,
    "image_tokens": 32 * 32,
    "codebook_size": 8192,
    "text_tokens": 256,
    "text_vocab": 16384,
    "transformer_parameters": 12_000_000_000,
    "tau_final": 1 / 16,
    "beta_final": 6.6,
    "text_loss_weight": 1 / 8,
    "image_loss_weight": 7 / 8,
}
"""256×256 images → 32×32 tokens from a codebook of 8192 (stage one, Gumbel-softmax with
τ annealed to 1/16, KL weight β raised to 6.6); captions as at most 256 BPE tokens from
a vocabulary of 16,384; a 12-billion-parameter transformer over the 1280 tokens, its
text and image losses weighted 1/8 and 7/8 (stage two)."""

RERANKING_SOURCE = Source(
    authors="Ramesh et al.",
    year=2021,
    title="Zero-Shot Text-to-Image Generation",
    arxiv="2102.12092",
    where="Section 2.6 (Sample Generation)",
    bibkey="ramesh2021dalle",
)
RERANKING: dict = {"samples_per_caption": 512, "temperature": 1.0}
"""Unless stated otherwise, the paper's samples are drawn at temperature 1 and reranked
by a contrastive model (CLIP, Radford et al. 2021): of N = 512 drawings per caption,
the ones CLIP scores highest for the caption are kept."""
