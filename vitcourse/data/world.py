"""The generated image world: coloured shapes on varied backgrounds, fully annotated.

One generator serves the whole book. A :class:`Sample` carries everything any
chapter needs, computed from the same drawing so the annotations can't disagree:

* the image, ``(3, H, W)`` floats in ``[0, 1]``;
* one class label per shape (see :data:`~vitcourse.data.shapes.SHAPES`);
* boxes ``(x0, y0, x1, y1)`` in pixels, the tightest box around each visible mask;
* instance masks of the visible part of each shape (later shapes cover earlier ones);
* captions in Spanish and English (``"un círculo rojo grande arriba a la izquierda"``);
* optionally a word written into the image, with its box (for the OCR chapters).

A :class:`WorldConfig` says what may appear; :func:`generate` draws one sample from a
seed. The same seed always gives the same pixels, on every machine.

Example::

    sample = generate(seed=0, config=WorldConfig(img_size=64, max_shapes=3))
    sample.image.shape, sample.labels, sample.caption
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .backgrounds import BACKGROUNDS, COLOR_NAMES, COLORS, render_background, sample_background_colors
from .captions import describe_shape, join_phrases, position_index, size_index
from .shapes import SHAPE_NAMES, shape_sdf
from .text import FONTS, WORDS, draw_text, text_size

__all__ = [
    "PlacedShape",
    "Sample",
    "WorldConfig",
    "generate",
    "make_rng",
    "masks_to_boxes",
    "paint_shapes",
    "place_shapes",
]


@dataclass(frozen=True)
class WorldConfig:
    """What the world may draw.

    Args:
        img_size: ``H`` (square) or ``(H, W)`` in pixels.
        shapes: the shape classes that may appear; labels index this tuple.
        colors: shape colours (names from :data:`~vitcourse.data.backgrounds.COLORS`).
        backgrounds: background styles to pick from.
        min_shapes, max_shapes: how many shapes per image (uniform in between).
        radius: range of shape radii as fractions of the shorter image side (a shape
            fits in a disk of that radius); the captions call below 0.17 *pequeño*,
            from 0.25 *grande*.
        rotation: largest rotation in degrees; each shape turns by a uniform angle in
            ``[-rotation, rotation]`` (0: upright, 180: any angle).
        min_contrast: least luminance difference between a shape colour and the background colours.
        background_spread: how far (per channel) a background's second colour may be from
            its first; small values keep stripes and blobs calmer than the shapes.
        color_jitter: uniform noise added to each channel of a shape's named colour.
        text_probability: chance of writing one word (from ``words``) in free space.
        words: vocabulary for that word.
        font: ``"dejavu"`` or ``"pillow"`` (see :mod:`vitcourse.data.text`).
        font_size: pixels; default a quarter of the shorter side, at least 8.
    """

    img_size: int | tuple[int, int] = 32
    shapes: tuple[str, ...] = SHAPE_NAMES
    colors: tuple[str, ...] = COLOR_NAMES
    backgrounds: tuple[str, ...] = BACKGROUNDS
    min_shapes: int = 1
    max_shapes: int = 1
    radius: tuple[float, float] = (0.12, 0.34)
    rotation: float = 180.0
    min_contrast: float = 0.35
    background_spread: float = 0.3
    color_jitter: float = 0.04
    text_probability: float = 0.0
    words: tuple[str, ...] = WORDS
    font: str = "dejavu"
    font_size: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.img_size, int):
            object.__setattr__(self, "img_size", (self.img_size, self.img_size))
        problems = []
        if min(self.img_size) < 8:
            problems.append(f"img_size must be at least 8 pixels, got {self.img_size}")
        unknown = [s for s in self.shapes if s not in SHAPE_NAMES]
        if unknown or not self.shapes:
            problems.append(f"shapes must be a non-empty subset of {SHAPE_NAMES}, got {self.shapes}")
        if not self.colors or any(c not in COLORS for c in self.colors):
            problems.append(f"colors must be a non-empty subset of {COLOR_NAMES}, got {self.colors}")
        if not self.backgrounds or any(b not in BACKGROUNDS for b in self.backgrounds):
            problems.append(f"backgrounds must be a non-empty subset of {BACKGROUNDS}, got {self.backgrounds}")
        if not 1 <= self.min_shapes <= self.max_shapes:
            problems.append(f"need 1 <= min_shapes <= max_shapes, got {self.min_shapes} and {self.max_shapes}")
        if not 0.05 <= self.radius[0] <= self.radius[1] <= 0.5:
            problems.append(f"radius must be a range inside [0.05, 0.5] (fractions of the side), got {self.radius}")
        elif self.radius[0] * min(self.img_size) < 2.5:
            problems.append(
                f"the smallest shape would have a radius of {self.radius[0] * min(self.img_size):.1f} pixels; "
                f"raise radius[0] to at least {2.5 / min(self.img_size):.3f} or use a larger img_size"
            )
        if not 0 <= self.rotation <= 180:
            problems.append(f"rotation must be in [0, 180] degrees, got {self.rotation}")
        if self.font not in FONTS:
            problems.append(f"font must be one of {FONTS}, got {self.font!r}")
        if problems:
            raise ValueError("invalid WorldConfig: " + "; ".join(problems))

    @property
    def num_classes(self) -> int:
        """Number of shape classes (the length of ``shapes``)."""
        return len(self.shapes)


@dataclass(frozen=True)
class PlacedShape:
    """One shape in a scene: what, where, how big, which colour.

    Attributes:
        shape: class identifier (``"star"``).
        label: index of ``shape`` in the config's ``shapes``.
        color: colour name; ``rgb`` the jittered value actually painted.
        center: ``(cx, cy)`` in pixels; ``radius`` in pixels; ``angle`` in radians.
    """

    shape: str
    label: int
    color: str
    rgb: tuple[float, float, float]
    center: tuple[float, float]
    radius: float
    angle: float


@dataclass
class Sample:
    """Everything drawn into one image.

    Attributes:
        image: ``(3, H, W)`` float32 in ``[0, 1]``.
        labels: ``(K,)`` int64 class labels, one per shape, in drawing order.
        boxes: ``(K, 4)`` float32 ``(x0, y0, x1, y1)`` pixel boxes: pixel columns
            ``x0 .. x1 - 1`` and rows ``y0 .. y1 - 1`` hold the visible mask.
        masks: ``(K, H, W)`` bool visible masks (never empty).
        caption: Spanish description; ``caption_en`` the English one.
        shapes: the :class:`PlacedShape` parameters.
        background: background style.
        text: the word written in the image (``""`` if none); ``text_box`` its ``(4,)`` box.
    """

    image: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    masks: torch.Tensor
    caption: str
    caption_en: str
    shapes: list[PlacedShape]
    background: str
    text: str = ""
    text_box: torch.Tensor | None = field(default=None, repr=False)


def make_rng(*seed: int) -> np.random.Generator:
    """A NumPy generator from one or more integers (``make_rng(seed, split, index)``)."""
    return np.random.default_rng(list(seed))


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tightest ``(x0, y0, x1, y1)`` box around each mask (``x1``, ``y1`` exclusive).

    Args:
        masks: ``(K, H, W)`` bool, none empty.

    Returns:
        ``(K, 4)`` float32.
    """
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for k, mask in enumerate(masks):
        rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
        y0, y1 = np.argmax(rows), len(rows) - np.argmax(rows[::-1])
        x0, x1 = np.argmax(cols), len(cols) - np.argmax(cols[::-1])
        boxes[k] = (x0, y0, x1, y1)
    return boxes


def place_shapes(rng: np.random.Generator, config: WorldConfig, first_label: int | None) -> list[PlacedShape]:
    """Draw the parameters of one image's shapes (what :func:`generate` paints).

    Centres keep apart so that no shape hides another; a shape that finds no free
    place in 100 tries is dropped, so fewer than ``config.min_shapes`` may come back.
    Other generators (e.g. :mod:`vitcourse.data.video`) move them before painting.

    Args:
        rng: the image's generator (see :func:`make_rng`).
        config: what the world may draw.
        first_label: the class of the first shape, or ``None`` for a random one.

    Returns:
        The shapes in painting order.
    """
    height, width = config.img_size
    side = min(height, width)
    count = int(rng.integers(config.min_shapes, config.max_shapes + 1))
    color_order = rng.permutation(len(config.colors))  # distinct colours while they last
    placed: list[PlacedShape] = []
    for k in range(count):
        label = first_label if (k == 0 and first_label is not None) else int(rng.integers(config.num_classes))
        color = config.colors[color_order[k % len(color_order)]]
        jitter = rng.uniform(-config.color_jitter, config.color_jitter, size=3)
        rgb = tuple(float(c) for c in np.clip(np.array(COLORS[color].rgb) + jitter, 0.0, 1.0))
        angle = math.radians(float(rng.uniform(-config.rotation, config.rotation)))
        for _ in range(100):
            radius = float(rng.uniform(*config.radius)) * side
            cx = float(rng.uniform(radius, width - radius))
            cy = float(rng.uniform(radius, height - radius))
            if all(math.hypot(cx - p.center[0], cy - p.center[1]) >= 0.9 * (radius + p.radius) for p in placed):
                placed.append(PlacedShape(config.shapes[label], label, color, rgb, (cx, cy), radius, angle))
                break
        else:
            if not placed:  # cannot happen with one shape, which always fits
                raise RuntimeError("could not place a single shape; check WorldConfig.radius")
    return placed


def paint_shapes(background: np.ndarray, shapes: Sequence[PlacedShape]) -> tuple[np.ndarray, np.ndarray]:
    """Composite anti-aliased shapes over the background in order (later ones on top).

    Args:
        background: ``(H, W, 3)`` float image in ``[0, 1]``.
        shapes: from :func:`place_shapes` (or moved copies of them).

    Returns:
        ``(image, masks)``: ``(H, W, 3)`` float32 and ``(K, H, W)`` bool visible masks.
    """
    height, width = background.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5  # pixel centres, (H, W) each
    image = background.copy()
    masks = np.zeros((len(shapes), height, width), dtype=bool)
    for k, placed in enumerate(shapes):
        distance = shape_sdf(placed.shape, x, y, placed.center, placed.radius, placed.angle)
        alpha = np.clip(0.5 - distance, 0.0, 1.0)[..., None]  # (H, W, 1) anti-aliased coverage
        image = image * (1.0 - alpha) + np.asarray(placed.rgb, dtype=np.float32) * alpha
        masks[k] = distance <= 0.0
        masks[:k] &= ~masks[k]  # what this shape covers is no longer visible below it
    return image.astype(np.float32), masks


def _write_word(
    rng: np.random.Generator, config: WorldConfig, image: np.ndarray, boxes: np.ndarray
) -> tuple[np.ndarray, str, np.ndarray | None]:
    """Write a random word where it overlaps no shape box; skip if there is no room."""
    height, width = config.img_size
    font_size = config.font_size or max(8, min(height, width) // 4)
    word = str(rng.choice(config.words))
    text_w, text_h = text_size(word, font_size, config.font)
    if text_w >= width or text_h >= height:
        return image, "", None
    for _ in range(30):
        x0, y0 = int(rng.integers(0, width - text_w + 1)), int(rng.integers(0, height - text_h + 1))
        box = np.array([x0, y0, x0 + text_w, y0 + text_h], dtype=np.float32)
        overlaps = (box[0] < boxes[:, 2]) & (boxes[:, 0] < box[2]) & (box[1] < boxes[:, 3]) & (boxes[:, 1] < box[3])
        if not overlaps.any():
            under = image[y0 : y0 + text_h, x0 : x0 + text_w].reshape(-1, 3).mean(axis=0)
            ink = (0.0, 0.0, 0.0) if under.mean() > 0.5 else (1.0, 1.0, 1.0)  # the readable one
            image, drawn, ink_box = draw_text(image, word, (x0, y0), font_size, ink, config.font)
            return image, drawn, ink_box
    return image, "", None


def generate(
    seed: int | Sequence[int] | np.random.Generator = 0,
    config: WorldConfig | None = None,
    label: int | None = None,
) -> Sample:
    """Draw one annotated image.

    Args:
        seed: an int, a sequence of ints (e.g. ``(seed, split, index)``) or a NumPy
            generator; equal seeds give equal samples.
        config: what may appear (default :class:`WorldConfig`, one shape at 32×32).
        label: force the class of the first shape (index into ``config.shapes``).

    Returns:
        A :class:`Sample`.
    """
    config = config or WorldConfig()
    if label is not None and not 0 <= label < config.num_classes:
        raise ValueError(f"label must be in [0, {config.num_classes}) for {config.shapes}, got {label}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shapes = place_shapes(rng, config, label)
    kind = config.backgrounds[int(rng.integers(len(config.backgrounds)))]
    colors = sample_background_colors(rng, 2, [s.rgb for s in shapes], config.min_contrast, config.background_spread)
    background = render_background(kind, rng, config.img_size, colors)
    image, masks = paint_shapes(background, shapes)
    visible = masks.any(axis=(1, 2))  # a shape hidden by later ones is no longer in the picture
    shapes, masks = [s for s, v in zip(shapes, visible) if v], masks[visible]
    boxes = masks_to_boxes(masks)

    text, text_box = "", None
    if config.text_probability > 0 and rng.random() < config.text_probability:
        image, text, text_box = _write_word(rng, config, image, boxes)

    side = min(config.img_size)
    phrases = [
        describe_shape(s.shape, s.color, size_index(s.radius, side), position_index(s.center, config.img_size))
        for s in shapes
    ]
    caption = join_phrases([p.es for p in phrases], "y")
    caption_en = join_phrases([p.en for p in phrases], "and")
    if text:
        caption += f', con la palabra "{text}"'
        caption_en += f', with the word "{text}"'
    return Sample(
        image=torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),  # (3, H, W)
        labels=torch.tensor([s.label for s in shapes], dtype=torch.int64),
        boxes=torch.from_numpy(boxes),
        masks=torch.from_numpy(masks),
        caption=caption,
        caption_en=caption_en,
        shapes=shapes,
        background=kind,
        text=text,
        text_box=None if text_box is None else torch.from_numpy(text_box),
    )
