"""Stochastic depth (DropPath): skip a whole residual branch for some samples while training."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DropPath", "drop_path", "drop_path_schedule"]


def drop_path(x: torch.Tensor, p: float = 0.0, training: bool = False) -> torch.Tensor:
    """Zero the branch ``x`` for a random subset of samples and rescale the rest.

    Args:
        x: ``(B, ...)`` output of a residual branch.
        p: probability of dropping the branch for each sample.
        training: only active while training.

    Returns:
        Tensor shaped like ``x``; its expectation equals ``x``.
    """
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # one coin per sample
    return x * x.new_empty(shape).bernoulli_(keep) / keep


class DropPath(nn.Module):
    """Module form of :func:`drop_path` with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop_path probability must be in [0, 1), got {p}")
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)


def drop_path_schedule(rate: float, depth: int) -> list[float]:
    """Stochastic-depth probabilities growing linearly from 0 (first block) to ``rate`` (last).

    Deeper blocks are dropped more often (Huang et al., 2016); plain Python, so it also
    works while building a model on the meta device.
    """
    if depth == 1:
        return [0.0]
    return [rate * i / (depth - 1) for i in range(depth)]
