"""Attention weights as figures: an interactive heatmap (plotly, a slider over heads)
and one query's weights laid over the image it looks at (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import plotly.graph_objects as go
import torch

from .patches import to_numpy_image

__all__ = ["attention_heatmap", "plot_attention_overlay"]


def attention_heatmap(
    weights: torch.Tensor,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    title: str = "Pesos de atención",
) -> go.Figure:
    """Heatmap of attention weights; a slider walks through the heads.

    Args:
        weights: ``(Nq, Nk)`` for one head or ``(h, Nq, Nk)`` for several (a leading
            batch axis of size 1 is dropped).
        query_labels: names of the ``Nq`` query tokens (rows).
        key_labels: names of the ``Nk`` key tokens (columns).
        title: figure title.

    Returns:
        A plotly figure; rows are queries, columns are keys, each row sums to 1.
    """
    weights = weights.detach().float().cpu()
    if weights.ndim == 4 and weights.shape[0] == 1:
        weights = weights[0]
    if weights.ndim == 2:
        weights = weights.unsqueeze(0)
    if weights.ndim != 3:
        raise ValueError(f"expected weights shaped (Nq, Nk) or (h, Nq, Nk), got {tuple(weights.shape)}")
    num_heads, num_queries, num_keys = weights.shape
    x = list(key_labels) if key_labels is not None else list(range(num_keys))
    y = list(query_labels) if query_labels is not None else list(range(num_queries))
    fig = go.Figure()
    for head in range(num_heads):
        fig.add_trace(
            go.Heatmap(
                z=weights[head].numpy(),
                x=x,
                y=y,
                colorscale="Blues",
                zmin=0,
                zmax=float(weights.max()),
                visible=head == 0,
                hovertemplate="query %{y} → key %{x}<br>peso %{z:.3f}<extra></extra>",
            )
        )
    layout = {
        "title": title if num_heads == 1 else f"{title}: cabeza 0",
        "xaxis_title": "key (a qué se atiende)",
        "yaxis_title": "query (quién atiende)",
        "yaxis_autorange": "reversed",
        "height": 460,
    }
    if num_heads > 1:
        layout["sliders"] = [
            {
                "active": 0,
                "currentvalue": {"prefix": "cabeza "},
                "steps": [
                    {
                        "method": "update",
                        "label": str(head),
                        "args": [{"visible": [i == head for i in range(num_heads)]}, {"title": f"{title}: cabeza {head}"}],
                    }
                    for head in range(num_heads)
                ],
            }
        ]
    fig.update_layout(**layout)
    return fig


def plot_attention_overlay(
    image: torch.Tensor,
    weights: torch.Tensor,
    grid_size: tuple[int, int],
    ax: plt.Axes | None = None,
    title: str | None = None,
    alpha: float = 0.6,
    cmap: str = "magma",
    vmax: float | None = None,
) -> plt.Axes:
    """Draw one query's attention over the patches of an image, on top of the image.

    Args:
        image: ``(C, H, W)`` tensor or ``(H, W[, C])`` array.
        weights: ``(gh * gw,)`` attention of one query over the patch tokens, in raster
            order (a ``(1, N)`` row is accepted too).
        grid_size: ``(gh, gw)`` patches per column and per row.
        ax: axes to draw on (a new figure by default).
        title: axes title.
        alpha: opacity of the attention layer.
        cmap: colour map of the attention layer. Its scale starts at 0 (no attention),
            so nearly uniform weights look uniform instead of being stretched.
        vmax: top of the colour scale (default: the largest weight); share it across
            panels to compare them.

    Returns:
        The axes.
    """
    grid_h, grid_w = grid_size
    weights = weights.detach().float().cpu().reshape(-1)
    if weights.numel() != grid_h * grid_w:
        raise ValueError(
            f"expected {grid_h * grid_w} weights for a {grid_h}x{grid_w} grid, got {weights.numel()}; "
            "pass one query's row over the patch tokens only (drop [CLS] first)"
        )
    picture = to_numpy_image(image)
    height, width = picture.shape[:2]
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4 * height / width))
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, extent=(0, width, height, 0))
    ax.imshow(
        weights.reshape(grid_h, grid_w).numpy(),
        cmap=cmap,
        alpha=alpha,
        extent=(0, width, height, 0),
        vmin=0.0,
        vmax=float(weights.max()) if vmax is None else vmax,
    )
    if title:
        ax.set_title(title)
    ax.axis("off")
    return ax
