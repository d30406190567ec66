"""n-gram language models: the baselines a GPT must beat.

An n-gram model predicts a token from the ``n - 1`` tokens before it only, by counting:
``P(w | h) ≈ c(h, w) / c(h)``. Raw counts give probability 0 to every pair not seen in
training, so they are smoothed. :class:`NGramLM` uses interpolated Kneser-Ney
(Kneser & Ney 1995; Chen & Goodman 1998), the standard strong baseline: subtract a
discount ``d`` from every seen count and give the freed mass to the lower-order model,
whose counts are *continuation* counts (in how many different contexts a token
appears, not how often), down to a uniform distribution over the vocabulary::

    P(w | h) = max(c(h, w) - d, 0) / c(h) + d · N₁₊(h, ·) / c(h) · P(w | h⁻)

with ``h⁻`` the context without its oldest token. A unigram model (``order=1``) is
add-one smoothed frequency. The cross-entropy on held-out text, in nats per token,
is the number to compare with a GPT's validation loss on the same tokens.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

__all__ = ["NGramLM"]


class NGramLM:
    """An interpolated Kneser-Ney n-gram model over integer tokens.

    Args:
        order: ``n`` (1: unigram, 2: bigram, 3: trigram).
        vocab_size: number of distinct tokens ``V``.
        discount: Kneser-Ney's ``d`` (0.75 is the usual value).
    """

    def __init__(self, order: int, vocab_size: int, discount: float = 0.75) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.order, self.vocab_size, self.discount = order, vocab_size, discount
        # counts[k][(context of length k, w)] for k = 0 … order - 1
        self.counts: list[Counter] = [Counter() for _ in range(order)]
        self.context_totals: list[Counter] = [Counter() for _ in range(order)]
        self.followers: list[Counter] = [Counter() for _ in range(order)]

    def fit(self, tokens: Sequence[int]) -> NGramLM:
        """Count the n-grams of a token stream.

        Args:
            tokens: the training tokens, in order.

        Returns:
            ``self``.
        """
        tokens = [int(t) for t in tokens]
        n = self.order
        top = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        self.counts[n - 1] = Counter({(g[:-1], g[-1]): c for g, c in top.items()})
        # Lower orders count continuations: how many distinct tokens precede each k-gram.
        for k in range(n - 2, -1, -1):
            self.counts[k] = Counter((h[1:], w) for (h, w) in self.counts[k + 1])
        if n == 1:
            self.counts[0] = Counter({((), t): c for t, c in Counter(tokens).items()})
        for k in range(n):
            totals, followers = Counter(), Counter()
            for (h, _), c in self.counts[k].items():
                totals[h] += c
                followers[h] += 1
            self.context_totals[k], self.followers[k] = totals, followers
        return self

    def prob(self, context: tuple[int, ...], token: int) -> float:
        """``P(token | context)`` with the last ``order - 1`` tokens of ``context``."""
        context = tuple(context[len(context) - (self.order - 1) :]) if self.order > 1 else ()
        if self.order == 1:  # add-one smoothed frequency
            total = self.context_totals[0][()]
            return (self.counts[0][((), token)] + 1) / (total + self.vocab_size)
        p = 1.0 / self.vocab_size
        for k in range(0, self.order):
            h = context[len(context) - k :] if k else ()
            total = self.context_totals[k].get(h, 0)
            if total == 0:
                continue  # unseen context: keep the lower order's estimate
            c = self.counts[k].get((h, token), 0)
            p = max(c - self.discount, 0) / total + self.discount * self.followers[k][h] / total * p
        return p

    def cross_entropy(self, tokens: Sequence[int], targets: np.ndarray | None = None) -> float:
        """Mean ``-log P(token | previous tokens)`` in nats per token.

        Args:
            tokens: held-out tokens, in order.
            targets: boolean mask of the positions to score (default: every position
                from ``1``; position ``i`` is predicted from the tokens before it).

        Returns:
            The cross-entropy; ``exp`` of it is the perplexity.
        """
        tokens = [int(t) for t in tokens]
        positions = range(1, len(tokens)) if targets is None else np.flatnonzero(targets)
        total, count = 0.0, 0
        for i in positions:
            context = tuple(tokens[max(0, i - self.order + 1) : i])
            total -= math.log(self.prob(context, tokens[i]))
            count += 1
        return total / count

    def __repr__(self) -> str:
        return f"NGramLM(order={self.order}, vocab_size={self.vocab_size}, discount={self.discount})"
