"""Figures for OCR (chapter 7): boxes over a page, stage by stage, and a preprocessing slider.

Both are plotly figures that work in the static book: the images travel inside the
figure as PNG data URIs, and buttons or a slider switch what is shown.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ..ocr.engines import TextBox, reading_order
from ..ocr.preprocess import as_gray_uint8

__all__ = ["attention_over_image", "image_data_uri", "ocr_flow_figure", "preprocessing_slider"]


def image_data_uri(image: np.ndarray) -> str:
    """A ``(H, W)`` or ``(H, W, 3)`` image as a ``data:image/png;base64,…`` URI."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(
        as_gray_uint8(image) if np.asarray(image).ndim == 2 else np.asarray(image)
    ).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(
        "ascii"
    )


def _box_shape(box: TextBox, colour: str) -> dict:
    if box.quad is not None:  # a tilted box: its four corners
        path = "M " + " L ".join(f"{x:.1f},{y:.1f}" for x, y in box.quad) + " Z"
        return {"type": "path", "path": path, "line": {"color": colour, "width": 2}}
    x0, y0, x1, y1 = box.box
    return {
        "type": "rect",
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "line": {"color": colour, "width": 2},
    }


def ocr_flow_figure(
    image: np.ndarray, boxes: Sequence[TextBox], title: str = ""
) -> go.Figure:
    """The three stages of conventional OCR over one image, switched by buttons.

    1. *detección*: the boxes alone;
    2. *reconocimiento*: each box with the string read in it (hover: the confidence);
    3. *lectura*: the boxes numbered in reading order (:func:`~vitcourse.ocr.reading_order`).

    Args:
        image: the ``(H, W)`` or ``(H, W, 3)`` uint8 image.
        boxes: recognised :class:`~vitcourse.ocr.TextBox` es (text and confidence filled).
        title: the figure's title.

    Returns:
        A plotly figure.
    """
    height, width = np.asarray(image).shape[:2]
    figure = go.Figure(go.Image(source=image_data_uri(image), hoverinfo="skip"))
    order = {
        id(box): i
        for i, box in enumerate(b for line in reading_order(list(boxes)) for b in line)
    }
    detect = [_box_shape(b, "#d62728") for b in boxes]
    recognise, read_labels, text_labels = [], [], []
    for box in boxes:
        x0, y0, _, _ = box.box
        colour = "#2ca02c" if box.confidence >= 0.5 else "#ff7f0e"
        recognise.append(_box_shape(box, colour))
        common = {
            "x": x0,
            "y": y0,
            "xanchor": "left",
            "yanchor": "bottom",
            "showarrow": False,
        }
        text_labels.append({**common, "text": box.text, "font": {"size": 11, "color": colour},
                            "bgcolor": "rgba(255,255,255,0.85)",
                            "hovertext": f"confianza {box.confidence:.2f}"})  # fmt: skip
        read_labels.append({**common, "text": str(order[id(box)] + 1), "font": {"size": 11, "color": "white"},
                            "bgcolor": "#1f77b4"})  # fmt: skip
    # hover points at the boxes' centres, so that the text and confidence show on hover too
    centres = np.array(
        [[(b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2] for b in boxes]
    ).reshape(-1, 2)
    figure.add_trace(
        go.Scatter(
            x=centres[:, 0], y=centres[:, 1], mode="markers", marker={"size": 14, "opacity": 0},
            hovertext=[f"«{b.text}» (confianza {b.confidence:.2f})" for b in boxes], hoverinfo="text",
            showlegend=False,
        )
    )  # fmt: skip
    stages = [
        ("1. detección", detect, []),
        ("2. reconocimiento", recognise, text_labels),
        ("3. lectura", recognise, read_labels),
    ]
    figure.update_layout(
        title=title,
        shapes=detect,
        height=max(260, int(height * 900 / width) + 120),
        margin={"l": 10, "r": 10, "t": 90, "b": 10},
        xaxis={"visible": False, "range": [0, width]},
        yaxis={"visible": False, "range": [height, 0], "scaleanchor": "x"},
        updatemenus=[
            {
                "type": "buttons", "direction": "right", "x": 0, "y": 1.12, "xanchor": "left", "showactive": True,
                "buttons": [
                    {"label": label, "method": "relayout", "args": [{"shapes": shapes, "annotations": notes}]}
                    for label, shapes, notes in stages
                ],
            }
        ],
    )  # fmt: skip
    return figure


def preprocessing_slider(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    captions: Sequence[str],
    title: str = "",
) -> go.Figure:
    """One image per slider position (e.g. a page flattened with growing ``sigma``).

    Args:
        images: the versions of the image, all the same size.
        labels: the slider's tick labels, one per image.
        captions: the title shown with each image (e.g. its CER).
        title: the part of the title common to every position.

    Returns:
        A plotly figure with a slider.
    """
    if not len(images) == len(labels) == len(captions):
        raise ValueError(
            f"got {len(images)} images, {len(labels)} labels and {len(captions)} captions; give one each"
        )
    height, width = np.asarray(images[0]).shape[:2]
    figure = go.Figure()
    for i, image in enumerate(images):
        figure.add_trace(
            go.Image(source=image_data_uri(image), visible=i == 0, hoverinfo="skip")
        )
    steps = [
        {
            "label": label, "method": "update",
            "args": [{"visible": [j == i for j in range(len(images))]}, {"title.text": f"{title}{caption}"}],
        }
        for i, (label, caption) in enumerate(zip(labels, captions))
    ]  # fmt: skip
    figure.update_layout(
        title={"text": f"{title}{captions[0]}"},
        sliders=[
            {
                "active": 0,
                "steps": steps,
                "currentvalue": {"prefix": "σ = "},
                "pad": {"t": 30},
            }
        ],
        height=int(height * 900 / width) + 200,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        xaxis={"visible": False, "range": [0, width]},
        yaxis={"visible": False, "range": [height, 0], "scaleanchor": "x"},
    )
    return figure


def attention_over_image(
    image: np.ndarray,
    weights: np.ndarray,
    labels: Sequence[str],
    title: str = "",
) -> go.Figure:
    """A heat map over an image for each step of a sequence, chosen with a slider.

    Args:
        image: ``(S, S, 3)`` uint8 or float in ``[0, 1]``.
        weights: ``(T, gh, gw)``: for each of ``T`` steps, a weight per cell of a grid
            laid over the image (e.g. the cross-attention of each written token).
        labels: ``T`` slider labels (the tokens).
        title: the figure's title.

    Returns:
        A plotly figure: the image, one translucent heat map per step, a slider.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    size = image.shape[0]
    steps, grid_h, grid_w = weights.shape
    cell_h, cell_w = size / grid_h, size / grid_w
    figure = go.Figure(go.Image(source=image_data_uri(image), hoverinfo="skip"))
    for t in range(steps):
        figure.add_trace(
            go.Heatmap(
                z=weights[t], x0=cell_w / 2, dx=cell_w, y0=cell_h / 2, dy=cell_h,
                colorscale="Magma", opacity=0.55, showscale=False, visible=t == 0,
                zmin=0, zmax=float(weights[t].max()),
                hovertemplate="peso %{z:.3f}<extra></extra>",
            )
        )  # fmt: skip
    slider_steps = [
        {
            "label": label, "method": "update",
            "args": [{"visible": [True] + [j == t for j in range(steps)]},
                     {"title.text": f"{title}token {t + 1}: «{label}»"}],
        }
        for t, label in enumerate(labels)
    ]  # fmt: skip
    figure.update_layout(
        title={"text": f"{title}token 1: «{labels[0]}»"},
        sliders=[{"active": 0, "steps": slider_steps, "currentvalue": {"visible": False}, "pad": {"t": 20}}],
        height=560,
        width=520,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        xaxis={"visible": False, "range": [0, size]},
        yaxis={"visible": False, "range": [size, 0], "scaleanchor": "x"},
    )
    return figure
