"""Noun phrases about the generated world, for the text-prompted detector.

A phrase names a shape, a colour, or both, in Spanish with the shape's gender:

* ``"estrella"`` (any star), ``"figura roja"`` (any red shape),
  ``"estrella roja"`` (a red star).

Each :class:`Phrase` knows which attributes it fixes, so whether it describes an
object is a lookup, not a guess: the same phrase may describe several objects of an
image, or none.

To test whether a detector understands phrases it never saw, :data:`HELD_OUT`
keeps eight shape–colour pairs, one per shape, out of every training prompt: the
objects themselves appear in training images (a green circle is called
``"círculo"`` or ``"figura verde"``), but ``"círculo verde"`` is only asked at test
time. Every word of those phrases appears in training phrases, in other pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data.backgrounds import COLOR_NAMES, COLORS
from ..data.shapes import SHAPE_NAMES, SHAPES

__all__ = [
    "HELD_OUT",
    "Phrase",
    "held_out_phrases",
    "phrase",
    "positives",
    "seen_phrases",
    "training_prompt",
    "vocabulary",
]

HELD_OUT: tuple[tuple[str, str], ...] = (
    ("circle", "green"),
    ("square", "yellow"),
    ("triangle", "blue"),
    ("star", "red"),
    ("cross", "purple"),
    ("ring", "orange"),
    ("heart", "pink"),
    ("crescent", "light blue"),
)
"""Shape–colour pairs whose phrase never appears in a training prompt."""


@dataclass(frozen=True)
class Phrase:
    """A noun phrase and the attributes it fixes (None: any).

    Attributes:
        text: the Spanish phrase, e.g. ``"estrella roja"``.
        shape: a shape identifier of :data:`~vitcourse.data.shapes.SHAPE_NAMES` or None.
        color: a colour name of :data:`~vitcourse.data.backgrounds.COLORS` or None.
    """

    text: str
    shape: str | None = None
    color: str | None = None

    def describes(self, shape: str, color: str) -> bool:
        """Whether an object of this shape and colour fits the phrase."""
        return (self.shape is None or self.shape == shape) and (self.color is None or self.color == color)


def phrase(shape: str | None = None, color: str | None = None) -> Phrase:
    """The phrase for a shape, a colour (``"figura …"``) or both."""
    if shape is None and color is None:
        raise ValueError("a phrase needs a shape, a colour or both")
    feminine = True if shape is None else SHAPES[shape].feminine
    noun = "figura" if shape is None else SHAPES[shape].name_es
    if color is None:
        return Phrase(noun, shape, None)
    paint = COLORS[color]
    return Phrase(f"{noun} {paint.es_feminine if feminine else paint.es_masculine}", shape, color)


def held_out_phrases() -> list[Phrase]:
    """The eight shape–colour phrases kept out of training."""
    return [phrase(s, c) for s, c in HELD_OUT]


def seen_phrases() -> list[Phrase]:
    """Every phrase a training prompt may contain: shapes, colours, and the other 72 pairs."""
    shapes = [phrase(s) for s in SHAPE_NAMES]
    colors = [phrase(color=c) for c in COLOR_NAMES]
    pairs = [phrase(s, c) for s in SHAPE_NAMES for c in COLOR_NAMES if (s, c) not in HELD_OUT]
    return shapes + colors + pairs


def vocabulary() -> list[str]:
    """Every word of every phrase (seen and held out), sorted."""
    words = {w for p in seen_phrases() + held_out_phrases() for w in p.text.split()}
    return sorted(words)


def positives(phrases: Sequence[Phrase], objects: Iterable[tuple[str, str]]) -> torch.Tensor:
    """Which phrases describe which objects: ``(M, P)`` bool for M ``(shape, colour)`` objects."""
    rows = [[p.describes(shape, color) for p in phrases] for shape, color in objects]
    return torch.tensor(rows, dtype=torch.bool).reshape(-1, len(phrases))


def training_prompt(
    objects: Sequence[Sequence[tuple[str, str]]], rng: np.random.Generator, num_negative: int = 16
) -> list[Phrase]:
    """A prompt for a batch: every shape, the phrases of the batch's objects, random others.

    Args:
        objects: per image, its objects as ``(shape, colour)``.
        rng: NumPy generator.
        num_negative: extra seen phrases drawn at random (they may or may not fit).

    Returns:
        The phrases, without repeats; never a held-out pair.
    """
    chosen = {p.text: p for p in (phrase(s) for s in SHAPE_NAMES)}
    for image in objects:
        for shape, color in image:
            for p in (phrase(color=color), phrase(shape, color)):
                if (p.shape, p.color) not in HELD_OUT:
                    chosen[p.text] = p
    pool = seen_phrases()
    for i in rng.choice(len(pool), size=min(num_negative, len(pool)), replace=False):
        chosen.setdefault(pool[i].text, pool[i])
    return list(chosen.values())
