"""The shapes of the generated image world, each one a signed distance function.

A signed distance function (SDF) tells, for every point, how far it is from the
shape's outline: negative inside, positive outside, zero on the edge. One function
per shape is all the renderer needs:

* the **mask** of a shape is ``sdf <= 0`` at the pixel centres;
* its **anti-aliased coverage** is ``clip(0.5 - sdf, 0, 1)`` with the distance in
  pixels: a pixel whose centre sits on the edge is half covered;
* moving, scaling and rotating a shape is done on the points, not on the shape.

Every shape lives in a unit frame (x to the right, y down, as in images) and fits
inside the unit disk, so a shape of ``radius`` r pixels never leaves a disk of radius
r around its centre. The distances of shapes built from unions and cuts (``cross``,
``crescent``) are exact outside and near the edge, which is all the renderer uses.

The classes, with the Spanish names the book and the captions use:

==========  ============  ======
id          nombre        género
==========  ============  ======
circle      círculo       m
square      cuadrado      m
triangle    triángulo     m
star        estrella      f
cross       cruz          f
ring        anillo        m
heart       corazón       m
crescent    media luna    f
==========  ============  ======
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SHAPES",
    "SHAPE_NAMES",
    "ShapeClass",
    "box_sdf",
    "polygon_sdf",
    "regular_polygon",
    "shape_coverage",
    "shape_sdf",
    "star_polygon",
]

SDF = Callable[[np.ndarray, np.ndarray], np.ndarray]


# --- building blocks -----------------------------------------------------------------------


def box_sdf(x: np.ndarray, y: np.ndarray, half_width: float, half_height: float) -> np.ndarray:
    """Signed distance to an axis-aligned rectangle centred at the origin.

    Args:
        x, y: point coordinates, any (equal) shapes.
        half_width, half_height: half sides of the rectangle.

    Returns:
        Distances with the shape of ``x``.
    """
    qx, qy = np.abs(x) - half_width, np.abs(y) - half_height
    outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    inside = np.minimum(np.maximum(qx, qy), 0.0)
    return outside + inside


def polygon_sdf(x: np.ndarray, y: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Signed distance to a closed polygon (convex or not), all edges at once.

    The distance is the one to the nearest edge segment; the sign comes from the
    even-odd rule (a ray to the right crosses the outline an odd number of times
    from inside).

    Args:
        x, y: point coordinates, shape ``S`` (e.g. ``(H, W)``).
        vertices: ``(E, 2)`` polygon corners in order.

    Returns:
        ``S`` distances, negative inside.
    """
    broadcast = (len(vertices), 2) + (1,) * x.ndim  # one edge per leading index
    start = vertices.reshape(broadcast)
    end = np.roll(vertices, -1, axis=0).reshape(broadcast)
    ex, ey = end[:, 0] - start[:, 0], end[:, 1] - start[:, 1]  # (E, 1, ..., 1) edge vectors
    wx, wy = x[None] - start[:, 0], y[None] - start[:, 1]  # (E, *S) from each edge start to the points
    t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)  # closest point on each segment
    distance = np.sqrt(np.min((wx - t * ex) ** 2 + (wy - t * ey) ** 2, axis=0))  # S
    # Even-odd rule: does the horizontal ray from the point cross edge e?
    straddles = (start[:, 1] <= y[None]) != (end[:, 1] <= y[None])
    crosses_right = (ex * wy - ey * wx) * np.sign(ey) > 0
    inside = np.sum(straddles & crosses_right, axis=0) % 2 == 1
    return np.where(inside, -distance, distance)


def regular_polygon(sides: int, radius: float = 1.0, phase: float = -math.pi / 2) -> np.ndarray:
    """Corners of a regular polygon, the first one straight up by default.

    Returns:
        ``(sides, 2)`` array of ``(x, y)`` with y pointing down.
    """
    angles = phase + 2 * math.pi * np.arange(sides) / sides
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def star_polygon(points: int = 5, outer: float = 1.0, inner: float = 0.45) -> np.ndarray:
    """Corners of a star: ``points`` tips at radius ``outer``, notches at ``inner``.

    Returns:
        ``(2 * points, 2)`` array, alternating tips and notches, the first tip up.
    """
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    angles = -math.pi / 2 + math.pi * np.arange(2 * points) / points
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


# --- the shapes, in the unit frame -----------------------------------------------------------

_TRIANGLE = regular_polygon(3)
_STAR = star_polygon(5, 1.0, 0.45)


def _circle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.hypot(x, y) - 0.95


def _square(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return box_sdf(x, y, 0.68, 0.68)  # corners at radius 0.96


def _triangle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return polygon_sdf(x, y, _TRIANGLE)


def _star(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return polygon_sdf(x, y, _STAR)


def _cross(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.minimum(box_sdf(x, y, 0.92, 0.3), box_sdf(x, y, 0.3, 0.92))  # union: the nearer bar


def _ring(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.abs(np.hypot(x, y) - 0.7) - 0.26  # outer radius 0.96, hole of radius 0.44


def _heart(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Inigo Quilez's heart (tip at the origin, lobes up, 1.1 tall, 1.2 wide) flipped to
    # image coordinates, centred and scaled to fit the unit disk.
    scale = 0.68
    px, py = np.abs(x) * scale, 0.55 - y * scale
    lobe = np.hypot(px - 0.25, py - 0.75) - math.sqrt(2) / 4
    to_top = (px - 0.0) ** 2 + (py - 1.0) ** 2
    along = 0.5 * np.maximum(px + py, 0.0)
    to_diagonal = (px - along) ** 2 + (py - along) ** 2
    body = np.sqrt(np.minimum(to_top, to_diagonal)) * np.sign(px - py)
    return np.where(px + py > 1.0, lobe, body) / scale


def _crescent(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    disk = np.hypot(x, y) - 0.95
    bite = np.hypot(x - 0.5, y) - 0.8
    return np.maximum(disk, -bite)  # the disk minus the bite


@dataclass(frozen=True)
class ShapeClass:
    """One class of the world: its identifier, Spanish name and grammatical gender, and its SDF.

    Attributes:
        name: English identifier (``"circle"``), used in code and English captions.
        name_es: Spanish display name (``"círculo"``).
        feminine: grammatical gender in Spanish (``una estrella roja`` vs ``un círculo rojo``).
        sdf: ``(x, y) -> distance`` in the unit frame.
    """

    name: str
    name_es: str
    feminine: bool
    sdf: SDF


SHAPES: dict[str, ShapeClass] = {
    shape.name: shape
    for shape in (
        ShapeClass("circle", "círculo", False, _circle),
        ShapeClass("square", "cuadrado", False, _square),
        ShapeClass("triangle", "triángulo", False, _triangle),
        ShapeClass("star", "estrella", True, _star),
        ShapeClass("cross", "cruz", True, _cross),
        ShapeClass("ring", "anillo", False, _ring),
        ShapeClass("heart", "corazón", False, _heart),
        ShapeClass("crescent", "media luna", True, _crescent),
    )
}
"""Every shape class by English identifier, in label order."""

SHAPE_NAMES: tuple[str, ...] = tuple(SHAPES)
"""The English identifiers in label order: ``SHAPE_NAMES[label]``."""


def _check_shape(name: str) -> ShapeClass:
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; the world has {', '.join(SHAPE_NAMES)}")
    return SHAPES[name]


def shape_sdf(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    center: tuple[float, float],
    radius: float,
    angle: float = 0.0,
) -> np.ndarray:
    """Signed distance, in pixels, from points to a placed shape.

    Args:
        name: shape identifier (see :data:`SHAPES`).
        x, y: pixel coordinates (e.g. pixel centres from ``np.meshgrid``).
        center: ``(cx, cy)`` of the shape in pixels.
        radius: radius in pixels of the disk the shape fits in.
        angle: rotation in radians (clockwise on screen, since y points down).

    Returns:
        Distances with the shape of ``x``; negative inside.
    """
    shape = _check_shape(name)
    cos, sin = math.cos(angle), math.sin(angle)
    dx, dy = x - center[0], y - center[1]
    # Rotate the points by -angle instead of the shape by +angle, then go to the unit frame.
    ux, uy = (cos * dx + sin * dy) / radius, (-sin * dx + cos * dy) / radius
    return shape.sdf(ux, uy) * radius


def shape_coverage(
    name: str,
    size: int | tuple[int, int],
    center: tuple[float, float],
    radius: float,
    angle: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise one shape: anti-aliased coverage and binary mask.

    Args:
        name: shape identifier.
        size: image size ``H`` or ``(H, W)``.
        center, radius, angle: placement, as in :func:`shape_sdf`.

    Returns:
        ``(coverage, mask)``: ``(H, W)`` float32 in ``[0, 1]`` and ``(H, W)`` bool with
        ``mask == (coverage >= 0.5)``.
    """
    height, width = (size, size) if isinstance(size, int) else size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5  # pixel centres, (H, W) each
    distance = shape_sdf(name, x, y, center, radius, angle)
    coverage = np.clip(0.5 - distance, 0.0, 1.0).astype(np.float32)
    return coverage, distance <= 0.0
