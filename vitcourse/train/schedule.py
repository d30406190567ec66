r"""Learning-rate schedule: linear warm-up, then cosine decay.

Transformers are trained with a learning rate that first grows linearly from zero
(large early updates through randomly initialised attention are unstable) and then
follows half a cosine down to a floor:

.. math::

    \eta(t) = \eta_{max} \cdot \begin{cases}
        (t + 1) / (T_w + 1) & t < T_w \\
        r + (1 - r) \cdot \tfrac12 \left(1 + \cos\left(\pi \frac{t - T_w}{T - T_w}\right)\right) & t \ge T_w
    \end{cases}

with ``t`` the optimiser step (from 0), ``T_w`` warm-up steps, ``T`` total steps and
``r`` the floor as a fraction of the peak. (The ``+ 1`` keeps the very first step from
having a learning rate of exactly zero.) The schedule is stepped once per optimiser
step, not per epoch.
"""

from __future__ import annotations

import math
import time

import torch

__all__ = ["TimeBudget", "warmup_cosine", "warmup_cosine_scheduler"]


def warmup_cosine(step: int, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0) -> float:
    """The learning-rate multiplier at ``step`` (0-based).

    Args:
        step: optimiser steps taken so far.
        total_steps: steps in the whole run.
        warmup_steps: steps of linear growth; the peak is reached at ``step == warmup_steps``.
        min_lr_ratio: the floor reached at ``step == total_steps``, as a fraction of the peak.

    Returns:
        A factor in ``[0, 1]`` to multiply the peak learning rate by.
    """
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            f"need total_steps >= 1 and 0 <= warmup_steps <= total_steps, got {total_steps}, {warmup_steps}"
        )
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)  # never exactly 0: the first step already learns a little
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`warmup_cosine` to every parameter group.

    Call its ``.step()`` after each optimiser step (not once per epoch).
    """
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total_steps, warmup_steps, min_lr_ratio)
    )


class TimeBudget:
    """Linear warm-up, then a cosine over steps or wall time, whichever is further along.

    Shared by the scripts that train to a wall-time budget (SAM, SAM 2, DALL-E's
    stages): a run stops at ``steps`` or after ``minutes`` of training, and the learning
    rate reaches zero at that end either way. Call :meth:`start` right before the first
    step.
    """

    def __init__(self, steps: int, minutes: float, warmup: int):
        self.steps, self.seconds, self.warmup = steps, minutes * 60, warmup
        self.started = time.time()

    def start(self) -> None:
        self.started = time.time()

    def elapsed(self) -> float:
        return time.time() - self.started

    def progress(self, step: int) -> float:
        """How far training is, 0 to 1: by steps or by time, whichever is further."""
        return max(step / self.steps, self.elapsed() / self.seconds)

    def lr_factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, self.progress(step))))
