"""Block diagrams drawn from the code's own structure (matplotlib)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Circle, FancyBboxPatch

__all__ = ["plot_encoder_block", "plot_ffn"]

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


def plot_ffn(
    x: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Draw a one-hidden-layer FFN as a network of neurons, with one token's values.

    Each neuron shows its value for the token ``x``; a hidden neuron also shows its value
    before the ReLU, and is grey when the ReLU switched it off. Edges are coloured by the
    weight's sign (orange positive, blue negative) and as thick as its magnitude.

    Args:
        x: the token, ``(D,)``.
        w1, b1: first layer, ``(D, H)`` and ``(H,)``, as in ``x @ w1 + b1``.
        w2, b2: second layer, ``(H, D_out)`` and ``(D_out,)``.
        ax: axes to draw on (a new figure by default).

    Returns:
        The axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    pre = x @ w1 + b1
    hidden = pre.clamp(min=0)
    out = hidden @ w2 + b2
    layers = [x, hidden, out]
    xs = [0.0, 2.2, 4.4]
    ys = [[(len(v) - 1) / 2 - i for i in range(len(v))] for v in layers]
    widest = float(max(w1.abs().max(), w2.abs().max()))
    for left, weights in ((0, w1), (1, w2)):
        for i, y0 in enumerate(ys[left]):
            for j, y1 in enumerate(ys[left + 1]):
                w = float(weights[i, j])
                colour = "#d95f02" if w > 0 else "#1f78b4"
                width = 0.4 + 2.6 * abs(w) / widest
                ax.plot([xs[left], xs[left + 1]], [y0, y1], color=colour, lw=width, alpha=0.7)
    for k, (values, column) in enumerate(zip(layers, xs)):
        for i, (value, y) in enumerate(zip(values.tolist(), ys[k])):
            off = k == 1 and value == 0
            ax.add_patch(Circle((column, y), 0.32, fc="0.85" if off else "white", ec="0.2", zorder=3))
            ax.text(column, y, f"{value:.2g}", ha="center", va="center", fontsize=9, zorder=4)
            if k == 1:
                ax.text(column, y + 0.42, f"antes de ReLU: {float(pre[i]):.2g}", ha="center",
                        fontsize=7.5, color="0.35")  # fmt: skip
    titles = ["entrada x", "capa oculta (ReLU)", "salida"]
    top = max(max(y) for y in ys) + 0.9
    for column, title in zip(xs, titles):
        ax.text(column, top, title, ha="center", fontsize=9)
    ax.set_xlim(-0.6, 5.0)
    ax.set_ylim(min(min(y) for y in ys) - 0.6, top + 0.3)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax
