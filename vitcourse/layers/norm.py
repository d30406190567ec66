"""Normalisation layers by name, for configs that choose one.

* ``"layernorm"``: ``(x - mean) / sqrt(var + ε) · γ + β`` over a token's ``D``
  numbers (the Transformer, ViT, GPT);
* ``"rmsnorm"``: ``x / sqrt(mean(x²) + ε) · γ``, without the mean and without ``β``
  (ImageGPT's "layer norm", and today's LLMs): cheaper, and as good in practice.
"""

from __future__ import annotations

from torch import nn

__all__ = ["NORMS", "make_norm"]

NORMS = {"layernorm": nn.LayerNorm, "rmsnorm": nn.RMSNorm}


def make_norm(name: str, dim: int, eps: float) -> nn.Module:
    """A normalisation layer over the last dimension.

    Args:
        name: ``"layernorm"`` or ``"rmsnorm"``.
        dim: the normalised dimension ``D``.
        eps: the ε added to the variance (or mean square).

    Returns:
        ``nn.LayerNorm(dim, eps)`` or ``nn.RMSNorm(dim, eps)``.

    Raises:
        ValueError: an unknown name.
    """
    if name not in NORMS:
        raise ValueError(f"unknown norm {name!r}; known: {', '.join(NORMS)}")
    return NORMS[name](dim, eps=eps)
