"""Text drawn into images, for the OCR chapters: words, short lines and receipts, with their boxes.

:func:`generate_text_line` draws a line of words; :func:`generate_receipt` a small
receipt (a shop's name, one to three items with prices, the total) whose fields are
also returned as JSON, the target of chapter 7's Donut.

The font must be on every machine without a download. Two choices:

* ``"dejavu"`` (default): DejaVu Sans, which ships inside matplotlib and has every
  Spanish letter (á, é, ñ, ü, ¿, ¡);
* ``"pillow"``: Pillow's built-in font (``ImageFont.load_default(size=...)``), whose
  glyphs stop at ASCII; text is folded to ASCII first (``visión`` → ``vision``) so the
  image and the returned string always agree.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .backgrounds import BACKGROUNDS, render_background, sample_background_colors

__all__ = [
    "FONTS",
    "RECEIPT_FIELDS",
    "WORDS",
    "ReceiptSample",
    "TextSample",
    "ascii_fold",
    "draw_text",
    "generate_receipt",
    "generate_text_line",
    "load_font",
    "text_size",
]

FONTS: tuple[str, ...] = ("dejavu", "dejavu-mono", "pillow")

WORDS: tuple[str, ...] = tuple(
    """
    visión imagen parche atención cabeza capa modelo datos texto forma color rojo azul verde círculo
    estrella cruz anillo corazón luna sol mar casa árbol niño año señal canción fácil número píxel token
    matriz vector red peso clase tarea
    """.split()
)
"""Spanish words (with accents and ñ) for text images."""


def ascii_fold(text: str) -> str:
    """Drop accents and tildes: ``"año visión"`` → ``"ano vision"`` (what Pillow's default font can draw)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).encode("ascii", "ignore").decode()


@functools.lru_cache(maxsize=32)
def load_font(size: int, font: str = "dejavu") -> ImageFont.FreeTypeFont:
    """A TrueType font of ``size`` pixels that needs no download.

    Args:
        size: font size in pixels.
        font: ``"dejavu"`` (matplotlib's DejaVu Sans), ``"dejavu-mono"`` (DejaVu Sans
            Mono, every character as wide as the next, as on a till receipt) or
            ``"pillow"`` (Pillow's default).

    Returns:
        A Pillow font object.
    """
    if font == "pillow":
        return ImageFont.load_default(size=size)
    families = {"dejavu": "DejaVu Sans", "dejavu-mono": "DejaVu Sans Mono"}
    if font in families:
        from matplotlib import font_manager

        properties = font_manager.FontProperties(family=families[font])
        path = font_manager.findfont(properties, fallback_to_default=True)
        return ImageFont.truetype(path, size=size)
    raise ValueError(f"unknown font {font!r}; choose one of {FONTS}")


def draw_text(
    image: np.ndarray,
    text: str,
    xy: tuple[float, float],
    font_size: int,
    color: Sequence[float] = (0.0, 0.0, 0.0),
    font: str = "dejavu",
) -> tuple[np.ndarray, str, np.ndarray]:
    """Draw one line of text on an image and measure where it landed.

    Args:
        image: ``(H, W, 3)`` float array in ``[0, 1]`` (left untouched).
        text: the line to draw.
        xy: top-left corner ``(x, y)`` of the text's anchor, in pixels.
        font_size: pixels.
        color: RGB in ``[0, 1]``.
        font: ``"dejavu"`` or ``"pillow"`` (see :func:`load_font`; ``"pillow"`` folds
            the text to ASCII).

    Returns:
        ``(new_image, drawn_text, box)``: the ``(H, W, 3)`` float32 image with the text,
        the text as drawn, and its ink box ``(x0, y0, x1, y1)`` in pixels (float32),
        clipped to the image.
    """
    if font == "pillow":
        text = ascii_fold(text)
    typeface = load_font(font_size, font)
    canvas = Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    fill = tuple(round(255 * c) for c in color)
    draw.text(xy, text, font=typeface, fill=fill)
    x0, y0, x1, y1 = draw.textbbox(xy, text, font=typeface)
    height, width = image.shape[:2]
    box = np.array([max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)], dtype=np.float32)
    return np.asarray(canvas, dtype=np.float32) / 255.0, text, box


def text_size(text: str, font_size: int, font: str = "dejavu") -> tuple[int, int]:
    """Width and height in pixels of the ink of ``text`` drawn at the origin."""
    if font == "pillow":
        text = ascii_fold(text)
    _, _, right, bottom = load_font(font_size, font).getbbox(text)
    return right, bottom


@dataclass
class TextSample:
    """A line of words on a generated background.

    Attributes:
        image: ``(3, H, W)`` float32 in ``[0, 1]``.
        text: the words joined by single spaces, exactly as drawn.
        words: the words; ``boxes`` their ``(len(words), 4)`` float32 ``(x0, y0, x1, y1)`` ink boxes.
        background: the background style.
    """

    image: torch.Tensor
    text: str
    words: list[str]
    boxes: torch.Tensor
    background: str


def generate_text_line(
    seed: int | Sequence[int] | np.random.Generator = 0,
    img_size: tuple[int, int] = (32, 128),
    max_words: int = 3,
    words: Sequence[str] = WORDS,
    font: str = "dejavu",
    font_size: int | None = None,
    backgrounds: Sequence[str] = BACKGROUNDS,
) -> TextSample:
    """Draw one line of 1 to ``max_words`` random words, left-aligned at a random offset.

    Args:
        seed: int, sequence of ints, or NumPy generator; equal seeds give equal images.
        img_size: ``(H, W)``.
        max_words: at most this many words (fewer if they don't fit the width).
        words: vocabulary.
        font: ``"dejavu"`` or ``"pillow"``.
        font_size: pixels; default 60 % of the height.
        backgrounds: background styles to pick from.

    Returns:
        A :class:`TextSample`.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    height, width = img_size
    font_size = font_size or max(8, int(0.6 * height))
    chosen = [str(w) for w in rng.choice(list(words), size=int(rng.integers(1, max_words + 1)))]
    if font == "pillow":
        chosen = [ascii_fold(w) for w in chosen]
    while len(chosen) > 1 and text_size(" ".join(chosen), font_size, font)[0] > width - 2:
        chosen.pop()  # keep what fits
    line_w, line_h = text_size(" ".join(chosen), font_size, font)
    if line_w > width or line_h > height:
        raise ValueError(
            f"the word {chosen[0]!r} at font_size={font_size} needs {line_w}x{line_h} pixels but the image is "
            f"{width}x{height}; use a smaller font_size or a larger img_size"
        )
    ink = np.array([0.0, 0.0, 0.0]) if rng.random() < 0.5 else np.array([1.0, 1.0, 1.0])
    kind = str(backgrounds[int(rng.integers(len(backgrounds)))])
    colors = sample_background_colors(rng, 2, [ink], min_contrast=0.5)
    image = render_background(kind, rng, (height, width), colors)
    margin = 1 if line_w + 2 <= width and line_h + 2 <= height else 0  # keep ink off the border
    x = int(rng.integers(margin, width - line_w - margin + 1))
    y = int(rng.integers(margin, height - line_h - margin + 1))
    boxes = []
    for word in chosen:  # word by word, so each gets its own box
        image, _, box = draw_text(image, word, (x, y), font_size, tuple(ink), font)
        boxes.append(box)
        x += text_size(word + " ", font_size, font)[0]
    return TextSample(
        image=torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),  # (3, H, W)
        text=" ".join(chosen),
        words=chosen,
        boxes=torch.from_numpy(np.stack(boxes)),
        background=kind,
    )


RECEIPT_FIELDS: tuple[str, ...] = ("tienda", "items", "nombre", "precio", "total")
"""The JSON keys of a receipt: ``{"tienda", "items": [{"nombre", "precio"}], "total"}``."""


@dataclass
class ReceiptSample:
    """A small receipt on a generated paper background.

    Attributes:
        image: ``(3, S, S)`` float32 in ``[0, 1]``.
        fields: ``{"tienda": str, "items": [{"nombre": str, "precio": str}], "total": str}``;
            prices as printed (``"12.50"``) and ``total`` their sum.
        lines: the printed lines, top to bottom (an item's name and price as one line).
        boxes: ``(len(lines), 4)`` float32 ``(x0, y0, x1, y1)`` ink boxes of the lines.
        background: the background style.
    """

    image: torch.Tensor
    fields: dict
    lines: list[str]
    boxes: torch.Tensor
    background: str


def _price(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def generate_receipt(
    seed: int | Sequence[int] | np.random.Generator = 0,
    img_size: int = 128,
    max_items: int = 3,
    words: Sequence[str] = WORDS,
    font_size: int | None = None,
    jitter: int = 3,
    backgrounds: Sequence[str] = ("flat", "gradient", "noise"),
) -> ReceiptSample:
    """Draw a till receipt: the shop's name, 1 to ``max_items`` items with prices, a rule, the total.

    As on a till receipt, the font is monospaced (DejaVu Sans Mono) and the layout is
    fixed: names on the left, prices aligned on the right, one line per item, the
    total below a rule. What changes from receipt to receipt: the words and prices,
    the number of items, the whole print shifted by up to ``jitter`` pixels each way,
    the paper (a light random colour, flat, a gradient or blotchy with grain) and the
    dark ink.

    Args:
        seed: int, sequence of ints, or NumPy generator; equal seeds give equal receipts.
        img_size: side ``S`` of the square image, in pixels.
        max_items: at most this many items.
        words: names for the shop and the items.
        font_size: pixels; default ``S // 10``.
        jitter: largest shift of the print, in pixels, along each axis.
        backgrounds: paper styles to pick from (see :mod:`.backgrounds`).

    Returns:
        A :class:`ReceiptSample`.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    size, font = img_size, "dejavu-mono"
    font_size = font_size or max(8, size // 10)
    step = font_size + max(2, font_size // 4)  # line spacing
    margin = max(2, size // 32) + jitter
    rows = 1 + max_items + 1
    if rows * step + 2 * margin > size:
        raise ValueError(
            f"{rows} lines of {step} px do not fit a {size}-pixel receipt; use a smaller "
            f"font_size, fewer max_items or a larger img_size"
        )
    ink = rng.uniform(0.0, 0.25, 3).astype(np.float32)
    kind = str(backgrounds[int(rng.integers(len(backgrounds)))])
    paper = sample_background_colors(rng, 2, [ink], min_contrast=0.55, spread=0.12)
    image = render_background(kind, rng, (size, size), paper)

    width = size - 2 * margin
    fits = [w for w in words if text_size(w, font_size, font)[0] <= width]
    items = []
    for _ in range(int(rng.integers(1, max_items + 1))):
        for _ in range(20):  # a name that fits beside its price
            name, cents = str(rng.choice(fits)), int(rng.integers(50, 10_000))
            line = f"{name} {_price(cents)}"
            if text_size(line, font_size, font)[0] + font_size // 2 <= width:
                break
        items.append((name, cents))
    shop = str(rng.choice(fits))
    total = sum(cents for _, cents in items)

    dx, dy = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2))
    left, right, y = margin + dx, size - margin + dx, margin + dy
    image, _, box = draw_text(image, shop, (left, y), font_size, tuple(ink), font)
    lines, boxes = [shop], [box]
    for name, cents in [*items, ("total", total)]:
        y += step
        image, _, name_box = draw_text(image, name, (left, y), font_size, tuple(ink), font)
        if name == "total":  # a rule above the total, as on a till receipt
            rule = round((float(boxes[-1][3]) + float(name_box[1])) / 2)
            image[rule, left:right] = ink
        price = _price(cents)
        x_price = right - text_size(price, font_size, font)[0]
        image, _, price_box = draw_text(image, price, (x_price, y), font_size, tuple(ink), font)
        lines.append(f"{name} {price}")
        boxes.append(
            np.array(
                [name_box[0], min(name_box[1], price_box[1]), price_box[2], max(name_box[3], price_box[3])],
                dtype=np.float32,
            )
        )
    fields = {
        "tienda": shop,
        "items": [{"nombre": name, "precio": _price(cents)} for name, cents in items],
        "total": _price(total),
    }
    return ReceiptSample(
        image=torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),  # (3, S, S)
        fields=fields,
        lines=lines,
        boxes=torch.from_numpy(np.stack(boxes)),
        background=kind,
    )
