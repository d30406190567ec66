"""Colours and backgrounds of the generated image world.

Shapes are painted with named colours (so captions can say *rojo*), each jittered a
little so no two reds are equal. Backgrounds are random colours kept at a minimum
brightness difference from every shape colour in the picture, drawn in one of four styles:

* ``flat``: one colour;
* ``gradient``: two colours blended along a random direction;
* ``noise``: two colours mixed by a smooth random field, plus fine grain;
* ``stripes``: two colours alternating, random period and angle.

Everything is NumPy on ``(H, W, 3)`` float arrays in ``[0, 1]`` and draws its
randomness from a ``numpy.random.Generator``, so a seed fixes every pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BACKGROUNDS",
    "COLORS",
    "COLOR_NAMES",
    "LUMA",
    "NamedColor",
    "luminance",
    "render_background",
    "sample_background_colors",
]


@dataclass(frozen=True)
class NamedColor:
    """A colour the captions can name.

    Attributes:
        name: English name (``"red"``), also the identifier.
        es_masculine, es_feminine: Spanish adjective for each gender (``rojo``/``roja``;
            ``verde``/``verde``).
        rgb: reference value, floats in ``[0, 1]``.
    """

    name: str
    es_masculine: str
    es_feminine: str
    rgb: tuple[float, float, float]


COLORS: dict[str, NamedColor] = {
    color.name: color
    for color in (
        NamedColor("red", "rojo", "roja", (0.86, 0.12, 0.12)),
        NamedColor("green", "verde", "verde", (0.13, 0.62, 0.20)),
        NamedColor("blue", "azul", "azul", (0.12, 0.26, 0.86)),
        NamedColor("yellow", "amarillo", "amarilla", (0.96, 0.86, 0.10)),
        NamedColor("orange", "naranja", "naranja", (0.98, 0.54, 0.08)),
        NamedColor("purple", "violeta", "violeta", (0.56, 0.20, 0.76)),
        NamedColor("pink", "rosa", "rosa", (0.98, 0.52, 0.76)),
        NamedColor("light blue", "celeste", "celeste", (0.40, 0.80, 0.96)),
        NamedColor("white", "blanco", "blanca", (0.97, 0.97, 0.97)),
        NamedColor("black", "negro", "negra", (0.06, 0.06, 0.06)),
    )
}
"""The shape colours by English name."""

COLOR_NAMES: tuple[str, ...] = tuple(COLORS)

BACKGROUNDS: tuple[str, ...] = ("flat", "gradient", "noise", "stripes")


LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)
"""Weights of R, G, B in the luminance (brightness) of a colour (ITU-R BT.601)."""


def luminance(colors: np.ndarray) -> np.ndarray:
    """Brightness in ``[0, 1]`` of ``(..., 3)`` RGB colours: ``0.299 R + 0.587 G + 0.114 B``."""
    return np.asarray(colors, dtype=np.float32) @ np.asarray(LUMA, dtype=np.float32)


def sample_background_colors(
    rng: np.random.Generator,
    count: int,
    avoid: list[np.ndarray] | tuple[np.ndarray, ...] = (),
    min_contrast: float = 0.35,
    spread: float | None = None,
    max_tries: int = 200,
) -> np.ndarray:
    """Random colours whose brightness differs by at least ``min_contrast`` from every colour in ``avoid``.

    Contrast is measured in luminance, as our eyes (and a linear patch embedding) see
    edges best: a red star stays visible on a darker or a lighter background, whatever
    its hue.

    Args:
        rng: random generator.
        count: how many colours.
        avoid: the shape colours that must stay visible over the background.
        min_contrast: least luminance difference (0 to 1).
        spread: if given, every colour after the first stays within ``spread`` of it in
            each channel, so stripes and blobs stay calmer than the shapes on them.
        max_tries: random draws per colour before falling back to the grey farthest
            (in luminance) from ``avoid``.

    Returns:
        ``(count, 3)`` float32 array.
    """
    avoid_luma = luminance(np.asarray(avoid, dtype=np.float32).reshape(-1, 3))
    colors = []
    for index in range(count):
        for _ in range(max_tries):
            color = rng.random(3, dtype=np.float32)
            if spread is not None and index > 0:  # a shade near the first colour
                color = np.clip(colors[0] + spread * (2 * color - 1), 0.0, 1.0)
            if len(avoid_luma) == 0 or np.abs(avoid_luma - luminance(color)).min() >= min_contrast:
                break
        else:  # crowded palette: the grey level farthest from every shape's brightness
            levels = np.linspace(0.0, 1.0, 21, dtype=np.float32)
            best = levels[np.argmax(np.abs(levels[:, None] - avoid_luma[None]).min(axis=1))]
            color = np.full(3, best, dtype=np.float32)
        colors.append(color)
    return np.stack(colors)


def _bilinear_weights(out_size: int, in_size: int) -> np.ndarray:
    """``(out_size, in_size)`` matrix that upsamples a vector by linear interpolation."""
    position = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
    position = np.clip(position, 0, in_size - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, in_size - 1)
    frac = position - low
    weights = np.zeros((out_size, in_size), dtype=np.float32)
    weights[np.arange(out_size), low] += 1 - frac
    weights[np.arange(out_size), high] += frac
    return weights


def _blend(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``(1 - t) * a + t * b`` for colours ``a``, ``b`` ``(3,)`` and weights ``t`` ``(H, W)``."""
    return a * (1.0 - t[..., None]) + b * t[..., None]  # (H, W, 3)


def render_background(
    kind: str,
    rng: np.random.Generator,
    size: tuple[int, int],
    colors: np.ndarray,
) -> np.ndarray:
    """Draw a background.

    Args:
        kind: one of :data:`BACKGROUNDS`.
        rng: random generator (direction, period, noise).
        size: ``(H, W)``.
        colors: ``(2, 3)`` colours (``flat`` uses the first).

    Returns:
        ``(H, W, 3)`` float32 in ``[0, 1]``.
    """
    height, width = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5  # pixel centres
    first, second = colors[0], colors[1]
    if kind == "flat":
        image = np.broadcast_to(first, (height, width, 3))
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        along = x * np.cos(angle) + y * np.sin(angle)
        t = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
        image = _blend(first, second, t)
    elif kind == "noise":
        cells = int(rng.integers(3, 7))  # blobs per side
        field = rng.random((cells, cells), dtype=np.float32)
        t = _bilinear_weights(height, cells) @ field @ _bilinear_weights(width, cells).T  # (H, W)
        grain = rng.normal(0.0, 0.03, size=(height, width, 3)).astype(np.float32)
        image = _blend(first, second, t) + grain
    elif kind == "stripes":
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(0.12, 0.3) * min(height, width)
        wave = np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
        image = _blend(first, second, np.clip(0.5 + 1.5 * wave, 0.0, 1.0))  # soft-edged bands
    else:
        raise ValueError(f"unknown background {kind!r}; choose one of {BACKGROUNDS}")
    return np.clip(image, 0.0, 1.0).astype(np.float32)
