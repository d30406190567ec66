"""A timeline of papers in lanes by area (matplotlib), drawn from a table of rows."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt

__all__ = ["plot_timeline"]

_COLOURS = {"NLP": "#d95f02", "visión": "#1b9e77", "multimodal": "#7570b3"}


def _year(date: str) -> float:
    """``"2020-10"`` → 2020.79 (the middle of the month)."""
    year, month = date.split("-")
    return int(year) + (int(month) - 0.5) / 12


def plot_timeline(
    rows: Sequence[dict],
    areas: Sequence[str],
    ax: plt.Axes | None = None,
    title: str = "",
) -> plt.Axes:
    """Draw one dot per paper on the lane of its area, with its name beside it.

    Names alternate above and below their lane, at three heights, so that papers a few
    months apart don't write over each other.

    Args:
        rows: dicts with ``model``, ``date`` (``"YYYY-MM"``) and ``area``.
        areas: the lanes, top to bottom; every row's area must be one of them.
        ax: axes to draw on (a new figure by default).
        title: the figure's title.

    Returns:
        The axes.
    """
    unknown = {row["area"] for row in rows} - set(areas)
    if unknown:
        raise ValueError(f"rows have areas {sorted(unknown)} that are not lanes {list(areas)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4.8))
    lane = {area: len(areas) - 1 - i for i, area in enumerate(areas)}  # top lane first
    offsets = (0.22, -0.22, 0.38, -0.38, 0.30, -0.30)
    for area in areas:
        in_lane = sorted((r for r in rows if r["area"] == area), key=lambda r: r["date"])
        colour = _COLOURS.get(area, "0.3")
        y = lane[area]
        ax.axhline(y, color=colour, lw=1, alpha=0.35, zorder=0)
        for i, row in enumerate(in_lane):
            x, dy = _year(row["date"]), offsets[i % len(offsets)]
            ax.plot(x, y, "o", color=colour, ms=7, zorder=3)
            ax.plot([x, x], [y, y + dy * 0.8], color=colour, lw=0.8, zorder=2)
            ax.annotate(
                row["model"], (x, y + dy), ha="center", va="bottom" if dy > 0 else "top",
                fontsize=8.5, color=colour,
            )  # fmt: skip
    years = [_year(row["date"]) for row in rows]
    first, last = int(min(years)), int(max(years)) + 1
    ax.set_xlim(first - 0.2, last + 0.2)
    ax.set_xticks(range(first, last + 1))
    ax.set_ylim(-0.7, len(areas) - 0.3)
    ax.set_yticks([lane[a] for a in areas], list(areas))
    ax.set_xlabel("fecha de la primera versión pública (año)")
    ax.grid(axis="x", alpha=0.3)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    if title:
        ax.set_title(title)
    return ax
