"""Interactive figures of positional encodings (plotly: they stay live in the static book)."""

from __future__ import annotations

import plotly.graph_objects as go
import torch

__all__ = ["cosine_similarity_matrix", "positional_encoding_heatmap", "position_similarity_figure"]


def cosine_similarity_matrix(encoding: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between every pair of rows.

    Args:
        encoding: ``(N, D)`` positional encodings (a leading batch axis of 1 is dropped).

    Returns:
        ``(N, N)`` with ones on the diagonal.
    """
    encoding = encoding.detach().float().reshape(-1, encoding.shape[-1])
    unit = torch.nn.functional.normalize(encoding, dim=-1)
    return unit @ unit.T


def positional_encoding_heatmap(encoding: torch.Tensor, title: str = "Codificación posicional") -> go.Figure:
    """Heatmap of an ``(N, D)`` encoding: one row per position, one column per dimension."""
    values = encoding.detach().float().reshape(-1, encoding.shape[-1]).numpy()
    fig = go.Figure(
        go.Heatmap(
            z=values,
            colorscale="RdBu",
            zmid=0.0,
            colorbar={"title": "valor"},
            hovertemplate="posición %{y}<br>dimensión %{x}<br>valor %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="dimensión del embedding",
        yaxis_title="posición",
        yaxis_autorange="reversed",
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def position_similarity_figure(
    encoding: torch.Tensor,
    grid_size: tuple[int, int] | None = None,
    title: str = "Similitud coseno entre posiciones",
    zmin: float | None = None,
) -> go.Figure:
    """Cosine similarity of one position with all the others, with a slider over positions.

    For a 1-D sequence the figure is the full ``N×N`` matrix. For patches, pass the
    ``(gh, gw)`` grid: each slider step shows, laid out as the image, how similar
    every patch's encoding is to the chosen patch's (marked with a cross), as in the
    ViT paper's Figure 7.

    Args:
        encoding: ``(N, D)`` encodings in raster order.
        grid_size: ``(gh, gw)`` with ``gh * gw == N`` for the per-patch view.
        title: figure title.
        zmin: bottom of the colour scale (the top is 1). ``None`` uses the smallest
            similarity in the matrix, so that encodings whose similarities stay
            positive (sinusoidal ones) still show their structure; pass ``-1`` to
            compare several figures on one scale.
    """
    similarity = cosine_similarity_matrix(encoding)
    zmin = float(similarity.min()) if zmin is None else zmin
    if grid_size is None:
        fig = go.Figure(
            go.Heatmap(
                z=similarity.numpy(),
                colorscale="Viridis",
                zmin=zmin,
                zmax=1,
                hovertemplate="i=%{y}, j=%{x}<br>cos=%{z:.3f}<extra></extra>",
            )
        )
        fig.update_layout(title=title, xaxis_title="posición j", yaxis_title="posición i", yaxis_autorange="reversed")
        return fig
    grid_h, grid_w = grid_size
    if grid_h * grid_w != similarity.shape[0]:
        raise ValueError(f"grid_size {grid_size} has {grid_h * grid_w} cells but the encoding has {similarity.shape[0]} rows")
    fig = go.Figure()
    for position in range(grid_h * grid_w):  # two traces per position: the map and the marker
        fig.add_trace(
            go.Heatmap(
                z=similarity[position].reshape(grid_h, grid_w).numpy(),
                colorscale="Viridis",
                zmin=zmin,
                zmax=1,
                visible=position == 0,
                hovertemplate="fila %{y}, columna %{x}<br>cos=%{z:.3f}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[position % grid_w],
                y=[position // grid_w],
                mode="markers",
                marker={"symbol": "x", "size": 12, "color": "red"},
                visible=position == 0,
                showlegend=False,
                hoverinfo="skip",
            )
        )
    steps = [
        {
            "method": "update",
            "label": str(position),
            "args": [
                {"visible": [i // 2 == position for i in range(2 * grid_h * grid_w)]},
                {"title": f"{title}: parche {position} (fila {position // grid_w}, columna {position % grid_w})"},
            ],
        }
        for position in range(grid_h * grid_w)
    ]
    fig.update_layout(
        title=f"{title}: parche 0 (fila 0, columna 0)",
        sliders=[{"active": 0, "currentvalue": {"prefix": "parche "}, "steps": steps}],
        xaxis={"title": "columna", "constrain": "domain"},
        yaxis={"title": "fila", "autorange": "reversed", "scaleanchor": "x", "constrain": "domain"},
        height=520,
    )
    return fig
