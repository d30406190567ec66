"""Captions of generated scenes, in Spanish (the book's language) and English.

Each shape is described by its class, colour, size and where its centre falls in a
3×3 grid over the image:

* ``"un círculo rojo grande arriba a la izquierda"``
* ``"a large red circle at the top left"``

Spanish needs the shape's gender for the article and the adjectives (*una estrella
roja pequeña*). Several shapes are joined with commas and *y* / *and*.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .backgrounds import COLORS
from .shapes import SHAPES

__all__ = [
    "POSITIONS_EN",
    "POSITIONS_ES",
    "SIZES",
    "describe_shape",
    "join_phrases",
    "position_index",
    "size_index",
]

SIZES: tuple[str, ...] = ("small", "medium", "large")
"""Size words in English; :data:`SIZE_LIMITS` splits the radius range between them."""

SIZE_LIMITS: tuple[float, float] = (0.17, 0.25)
"""Radius, as a fraction of the image's shorter side, where *medium* and *large* begin."""

_SIZES_ES = {
    "small": ("pequeño", "pequeña"),
    "medium": ("mediano", "mediana"),
    "large": ("grande", "grande"),
}

POSITIONS_ES: tuple[str, ...] = (
    "arriba a la izquierda",
    "arriba",
    "arriba a la derecha",
    "a la izquierda",
    "en el centro",
    "a la derecha",
    "abajo a la izquierda",
    "abajo",
    "abajo a la derecha",
)
"""Where a shape is, by cell of a 3×3 grid in raster order (row * 3 + column)."""

POSITIONS_EN: tuple[str, ...] = (
    "at the top left",
    "at the top",
    "at the top right",
    "on the left",
    "in the center",
    "on the right",
    "at the bottom left",
    "at the bottom",
    "at the bottom right",
)


def size_index(radius: float, image_side: int) -> int:
    """0, 1 or 2 (small, medium, large) for a shape of ``radius`` pixels."""
    fraction = radius / image_side
    return int(fraction >= SIZE_LIMITS[0]) + int(fraction >= SIZE_LIMITS[1])


def position_index(center: tuple[float, float], size: tuple[int, int]) -> int:
    """Cell (0–8, raster order) of the 3×3 grid that holds ``center = (cx, cy)`` in an ``(H, W)`` image."""
    height, width = size
    column = min(int(3 * center[0] / width), 2)
    row = min(int(3 * center[1] / height), 2)
    return row * 3 + column


@dataclass(frozen=True)
class _Phrase:
    es: str
    en: str


def describe_shape(shape: str, color: str, size: int, position: int) -> _Phrase:
    """Spanish and English noun phrases for one shape.

    Args:
        shape: shape identifier (``"star"``).
        color: colour name (``"red"``).
        size: 0, 1, 2 as returned by :func:`size_index`.
        position: 0–8 as returned by :func:`position_index`.

    Returns:
        An object with ``.es`` (``"una estrella roja pequeña arriba"``) and ``.en``
        (``"a small red star at the top"``).
    """
    kind, paint = SHAPES[shape], COLORS[color]
    feminine = int(kind.feminine)
    article = ("un", "una")[feminine]
    color_es = (paint.es_masculine, paint.es_feminine)[feminine]
    size_es = _SIZES_ES[SIZES[size]][feminine]
    es = f"{article} {kind.name_es} {color_es} {size_es} {POSITIONS_ES[position]}"
    en = f"a {SIZES[size]} {paint.name} {kind.name} {POSITIONS_EN[position]}"
    return _Phrase(es=es, en=en)


def join_phrases(phrases: Sequence[str], conjunction: str) -> str:
    """``"a"``, ``"a y b"``, ``"a, b y c"`` (with ``conjunction="y"``)."""
    if not phrases:
        return ""
    if len(phrases) == 1:
        return phrases[0]
    return f"{', '.join(phrases[:-1])} {conjunction} {phrases[-1]}"
