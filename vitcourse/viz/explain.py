"""Figures of where a ViT looks: ``[CLS]`` attention per layer and head, and rollout.

* :func:`plot_attention_grid` (matplotlib): one image, a panel per layer and head, for print;
* :func:`attention_explorer` (plotly): several images behind a slider, every layer and head
  at once, with the object's outline drawn over each map. It is data, not pictures, so it
  stays light in the static book (a few hundred kilobytes for a handful of small images).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .patches import to_numpy_image

__all__ = ["attention_explorer", "mask_outlines", "plot_attention_grid"]


def mask_outlines(mask: torch.Tensor | np.ndarray, tolerance: float = 0.4) -> list[np.ndarray]:
    """The outlines of a boolean mask as polygons in pixel coordinates.

    Args:
        mask: ``(H, W)`` boolean.
        tolerance: simplification in pixels (fewer points, same look).

    Returns:
        A list of ``(K, 2)`` arrays of ``(x, y)`` points, pixel centres at integers.
    """
    from skimage.measure import approximate_polygon, find_contours

    mask = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask, dtype=float)
    padded = np.pad(mask, 1)  # closes contours that touch the border
    outlines = []
    for contour in find_contours(padded, 0.5):
        contour = approximate_polygon(contour, tolerance) - 1.0  # undo the padding
        outlines.append(contour[:, ::-1])  # (row, col) -> (x, y)
    return outlines


def _grid_extent(weights: torch.Tensor, grid_size: tuple[int, int]) -> np.ndarray:
    grid_h, grid_w = grid_size
    weights = weights.detach().float().cpu().reshape(-1)
    if weights.numel() != grid_h * grid_w:
        raise ValueError(f"expected {grid_h * grid_w} weights for a {grid_h}x{grid_w} grid, got {weights.numel()}")
    return weights.reshape(grid_h, grid_w).numpy()


def plot_attention_grid(
    image: torch.Tensor,
    cls_maps: torch.Tensor,
    grid_size: tuple[int, int],
    extra: Mapping[str, torch.Tensor] | None = None,
    mask: torch.Tensor | None = None,
    alpha: float = 0.65,
    cmap: str = "magma",
) -> plt.Figure:
    """One image's ``[CLS]`` attention, a row per layer and a column per head, over the image.

    Args:
        image: ``(C, H, W)`` in ``[0, 1]``.
        cls_maps: ``(L, h, N)`` ``[CLS]`` attention over the ``N = gh·gw`` patches
            (:func:`vitcourse.explain.cls_attention` of one image).
        grid_size: ``(gh, gw)``.
        extra: more maps ``(N,)`` by name (rollout...), drawn in an extra column, one per row.
        mask: optional ``(H, W)`` object mask, outlined in cyan on every panel.
        alpha: opacity of the maps.
        cmap: colour map; each panel is scaled from 0 to its own maximum.

    Returns:
        The figure.
    """
    if cls_maps.ndim != 3:
        raise ValueError(f"expected cls_maps shaped (L, h, N) for one image, got {tuple(cls_maps.shape)}")
    num_layers, num_heads, _ = cls_maps.shape
    extra = dict(extra or {})
    if len(extra) > num_layers:
        raise ValueError(f"at most {num_layers} extra maps fit in the extra column, got {len(extra)}")
    columns = num_heads + (1 if extra else 0)
    picture = to_numpy_image(image)
    height, width = picture.shape[:2]
    outlines = mask_outlines(mask) if mask is not None else []
    fig, axes = plt.subplots(num_layers, columns, figsize=(1.55 * columns + 0.4, 1.55 * num_layers), squeeze=False)

    def draw(ax, weights, title):
        ax.imshow(picture, extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        values = _grid_extent(weights, grid_size)
        ax.imshow(values, cmap=cmap, alpha=alpha, vmin=0, vmax=float(values.max()) or 1.0,
                  extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        for outline in outlines:
            ax.plot(outline[:, 0], outline[:, 1], color="cyan", lw=1.0)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])

    for layer in range(num_layers):
        for head in range(num_heads):
            draw(axes[layer, head], cls_maps[layer, head], f"capa {layer + 1}, cabeza {head + 1}")
        if extra:
            names = list(extra)
            if layer < len(names):
                draw(axes[layer, -1], extra[names[layer]], names[layer])
            else:
                axes[layer, -1].axis("off")
    fig.tight_layout()
    return fig


def _png_data_uri(image: torch.Tensor) -> str:
    from PIL import Image

    array = (to_numpy_image(image) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def attention_explorer(
    images: torch.Tensor,
    cls_maps: torch.Tensor,
    grid_size: tuple[int, int],
    summaries: Mapping[str, torch.Tensor] | None = None,
    masks: torch.Tensor | None = None,
    titles: Sequence[str] | None = None,
    colorscale: str = "Magma",
    panel_size: int = 118,
) -> go.Figure:
    """An interactive grid of ``[CLS]`` attention maps: a slider chooses the image.

    Column 1 shows the image and, below it, the ``summaries`` (rollout, ...); the other
    columns show the ``[CLS]`` attention of each head (columns) in each layer (rows). Each
    map is scaled from 0 to its own maximum (hover for the values); the object's outline
    is drawn over the maps.

    Args:
        images: ``(B, C, H, W)`` in ``[0, 1]``.
        cls_maps: ``(B, L, h, N)`` (:func:`vitcourse.explain.cls_attention`).
        grid_size: ``(gh, gw)`` with ``gh·gw = N``.
        summaries: maps ``(B, N)`` by name, shown under the image (at most ``L - 1``).
        masks: ``(B, H, W)`` object masks for the outlines (optional).
        titles: one title per image (the slider's labels use its first words).
        colorscale: plotly colour scale of the maps.
        panel_size: pixels per panel.

    Returns:
        A plotly figure.
    """
    if images.ndim != 4 or cls_maps.ndim != 4 or len(images) != len(cls_maps):
        raise ValueError(
            f"expected images (B, C, H, W) and cls_maps (B, L, h, N) with the same B, got "
            f"{tuple(images.shape)} and {tuple(cls_maps.shape)}"
        )
    count, num_layers, num_heads, _ = cls_maps.shape
    summaries = dict(summaries or {})
    if len(summaries) > num_layers - 1:
        raise ValueError(f"at most {num_layers - 1} summaries fit under the image, got {len(summaries)}")
    titles = list(titles) if titles is not None else [f"imagen {i}" for i in range(count)]
    height, width = images.shape[-2:]
    patch_h, patch_w = height // grid_size[0], width // grid_size[1]
    column_titles = ["imagen / resumen"] + [f"cabeza {h + 1}" for h in range(num_heads)]
    fig = make_subplots(
        rows=num_layers,
        cols=num_heads + 1,
        column_titles=column_titles,
        row_titles=[f"capa {layer + 1}" for layer in range(num_layers)],
        horizontal_spacing=0.015,
        vertical_spacing=0.03,
    )
    traces_per_image = []
    for index in range(count):
        first_trace = len(fig.data)
        visible = index == 0
        fig.add_trace(
            go.Image(source=_png_data_uri(images[index]), x0=0, dx=1, y0=0, dy=1, visible=visible,
                     hoverinfo="skip", name=titles[index]),
            row=1,
            col=1,
        )
        outlines = mask_outlines(masks[index]) if masks is not None else []
        panels = [(row + 2, 1, name, values[index]) for row, (name, values) in enumerate(summaries.items())]
        panels += [
            (layer + 1, head + 2, f"capa {layer + 1}, cabeza {head + 1}", cls_maps[index, layer, head])
            for layer in range(num_layers)
            for head in range(num_heads)
        ]
        for row, col, name, weights in panels:
            values = _grid_extent(weights, grid_size)
            fig.add_trace(
                go.Heatmap(
                    z=np.round(values, 4),
                    x0=(patch_w - 1) / 2,
                    dx=patch_w,
                    y0=(patch_h - 1) / 2,
                    dy=patch_h,
                    zmin=0,
                    zmax=float(values.max()) or 1.0,
                    colorscale=colorscale,
                    showscale=False,
                    visible=visible,
                    name=name,
                    hovertemplate=f"{name}<br>peso %{{z:.3f}}<extra></extra>",
                ),
                row=row,
                col=col,
            )
            for outline in outlines:
                fig.add_trace(
                    go.Scatter(
                        x=np.round(outline[:, 0], 2),
                        y=np.round(outline[:, 1], 2),
                        mode="lines",
                        line={"color": "cyan", "width": 1.5},
                        hoverinfo="skip",
                        showlegend=False,
                        visible=visible,
                    ),
                    row=row,
                    col=col,
                )
        traces_per_image.append(range(first_trace, len(fig.data)))
    total = len(fig.data)
    steps = []
    for index in range(count):
        shown = set(traces_per_image[index])
        steps.append(
            {
                "method": "update",
                "label": titles[index].split(" (")[0],
                "args": [{"visible": [i in shown for i in range(total)]}, {"title.text": titles[index]}],
            }
        )
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False, "range": [-0.5, width - 0.5]}
    fig.update_xaxes(**axis)
    fig.update_yaxes(**{**axis, "range": [height - 0.5, -0.5]})
    for row, name in enumerate(summaries, start=2):  # name the summaries on the left of their panels
        fig.update_yaxes(title={"text": name, "font": {"size": 11}, "standoff": 2}, row=row, col=1)
    for k in range(1, num_layers * (num_heads + 1) + 1):  # square panels: each y axis follows its own x axis
        suffix = "" if k == 1 else str(k)
        fig.layout[f"yaxis{suffix}"].update(scaleanchor=f"x{suffix}", scaleratio=1)
    fig.update_layout(
        title={"text": titles[0], "x": 0.5},
        height=panel_size * num_layers + 190,
        width=panel_size * (num_heads + 1) + 120,
        margin={"l": 40 if summaries else 20, "r": 40, "t": 80, "b": 20},
        sliders=[{"active": 0, "currentvalue": {"prefix": "imagen: "}, "steps": steps, "pad": {"t": 10}}],
        plot_bgcolor="white",
    )
    return fig
