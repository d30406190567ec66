"""Interactive attention-weight heatmaps (plotly), one head at a time with a slider."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import torch

__all__ = ["attention_heatmap"]


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
