"""Block diagrams drawn from the code's own structure (matplotlib)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyBboxPatch

__all__ = ["plot_encoder_block"]

_COLOURS = {"LayerNorm": "#f6e7b4", "Multi-Head\nAttention": "#f8c9a6", "MLP": "#bfe3f5"}


def _encoder_steps(norm_first: bool) -> list[tuple[str, str]]:
    # ("branch", "") saves the residual; ("add", "") adds it back.
    if norm_first:
        return [
            ("branch", ""), ("box", "LayerNorm"), ("box", "Multi-Head\nAttention"), ("add", ""),
            ("branch", ""), ("box", "LayerNorm"), ("box", "MLP"), ("add", ""),
        ]  # fmt: skip
    return [
        ("branch", ""), ("box", "Multi-Head\nAttention"), ("add", ""), ("box", "LayerNorm"),
        ("branch", ""), ("box", "MLP"), ("add", ""), ("box", "LayerNorm"),
    ]  # fmt: skip


def plot_encoder_block(norm_first: bool = True, ax: plt.Axes | None = None, depth_label: str = "× depth") -> plt.Axes:
    """Draw one Transformer encoder block, as :class:`~vitcourse.layers.EncoderBlock` computes it.

    Data flows from the bottom (input tokens) to the top. Pre-norm (``norm_first=True``,
    ViT) normalises inside each branch and keeps the residual path an identity;
    post-norm (the 2017 Transformer's "Add & Norm") normalises after each sum.

    Args:
        norm_first: pre-norm (True) or post-norm (False).
        ax: axes to draw on (a new figure by default).
        depth_label: text of the bracket that marks the repeated block.

    Returns:
        The axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(3.4, 6.2))
    x_main, x_skip, box_w, box_h, radius, gap = 2.0, 0.3, 2.4, 0.8, 0.22, 0.45
    arrow = {"arrowstyle": "-|>", "lw": 1.1, "color": "0.25", "shrinkA": 0, "shrinkB": 0}
    line = {"color": "0.25", "lw": 1.1}
    y = 0.6  # top of the previous element
    ax.text(x_main, 0.0, "tokens (B, N, D)", ha="center", va="center", fontsize=9)
    first_y, saved = None, None
    for kind, label in _encoder_steps(norm_first):
        if kind == "branch":  # the residual leaves the main path here
            y += gap / 2
            saved = y
            first_y = y if first_y is None else first_y
            ax.plot([x_main, x_skip, x_skip], [y, y, y + 0.01], **line)
            continue
        bottom = y + gap
        ax.annotate("", xy=(x_main, bottom), xytext=(x_main, y), arrowprops=arrow)
        if kind == "box":
            ax.add_patch(
                FancyBboxPatch(
                    (x_main - box_w / 2, bottom), box_w, box_h, boxstyle="round,pad=0,rounding_size=0.12",
                    fc=_COLOURS.get(label, "white"), ec="0.3",
                )  # fmt: skip
            )
            ax.text(x_main, bottom + box_h / 2, label, ha="center", va="center", fontsize=9)
            y = bottom + box_h
        else:  # add: the residual comes back
            centre = bottom + radius
            ax.add_patch(Circle((x_main, centre), radius, fc="white", ec="0.3"))
            ax.text(x_main, centre, "+", ha="center", va="center", fontsize=12)
            ax.annotate("", xy=(x_main - radius, centre), xytext=(x_skip, centre), arrowprops=arrow)
            ax.plot([x_skip, x_skip], [saved, centre], **line)
            y = centre + radius
    ax.annotate("", xy=(x_main, y + gap + 0.2), xytext=(x_main, y), arrowprops=arrow)
    ax.text(x_main, y + gap + 0.5, "tokens (B, N, D)", ha="center", va="center", fontsize=9)
    ax.annotate("", xy=(x_main, first_y - gap / 2 + 0.05), xytext=(x_main, 0.25), arrowprops=arrow)
    ax.plot([x_main, x_main], [first_y - gap / 2, first_y], **line)
    x_bracket = x_main + box_w / 2 + 0.3
    ax.plot([x_bracket - 0.15, x_bracket, x_bracket, x_bracket - 0.15], [first_y, first_y, y, y], color="0.3", lw=1.0)
    ax.text(x_bracket + 0.15, (first_y + y) / 2, depth_label, rotation=90, va="center", fontsize=10)
    ax.set_title("pre-norm (ViT)" if norm_first else "post-norm (Transformer 2017)", fontsize=10)
    ax.set_xlim(0.0, x_bracket + 0.6)
    ax.set_ylim(-0.4, y + gap + 0.8)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax
