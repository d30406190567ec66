"""Detection figures: boxes over images, the matching cost matrix, a thresholds slider (plotly).

Every figure stays interactive in the static book: sliders switch between
precomputed states (``visible`` flags and layout ``shapes``), no Python behind them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from .patches import to_numpy_image

__all__ = ["boxes_figure", "cost_matrix_figure", "threshold_figure"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def _image_trace(image) -> go.Image:
    pixels = (to_numpy_image(image) * 255).round().astype(np.uint8)
    return go.Image(z=pixels, hoverinfo="skip")


def _box_shapes(boxes, colors, dash: str = "solid", width: float = 2.0) -> list[dict]:
    shapes = []
    for box, color in zip(torch.as_tensor(boxes).tolist(), colors):
        x0, y0, x1, y1 = box
        shapes.append({"type": "rect", "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                       "line": {"color": color, "width": width, "dash": dash}})  # fmt: skip
    return shapes


def _labels_trace(boxes, texts, colors) -> go.Scatter:
    boxes = torch.as_tensor(boxes).reshape(-1, 4)
    return go.Scatter(
        x=boxes[:, 0].tolist(), y=boxes[:, 1].tolist(), mode="text", text=list(texts),
        textposition="top right", textfont={"color": list(colors), "size": 11}, hoverinfo="text",
        showlegend=False,
    )  # fmt: skip


def boxes_figure(
    images: Sequence,
    predictions: Sequence[dict],
    targets: Sequence[dict] | None = None,
    names: Sequence[str] | None = None,
    title: str = "Detecciones",
    height: int = 460,
) -> go.Figure:
    """Predicted boxes (solid, labelled) and annotations (dashed, white) over images; a slider picks the image.

    Args:
        images: ``(3, H, W)`` tensors or arrays.
        predictions: per image ``boxes`` ``(K, 4)`` xyxy pixels, ``scores``, ``labels``
            (or ``phrases``: strings).
        targets: per image ``boxes`` of the annotations (optional).
        names: class names for integer labels.
        title: figure title.
        height: pixels.
    """
    fig = go.Figure()
    steps, per_image = [], []
    for i, (image, pred) in enumerate(zip(images, predictions)):
        labels = pred.get("phrases")
        if labels is None:
            labels = [names[int(c)] if names else str(int(c)) for c in torch.as_tensor(pred["labels"]).tolist()]
        keys = sorted(set(labels))
        colors = [PALETTE[keys.index(label) % len(PALETTE)] for label in labels]
        texts = [f"{label} {float(s):.2f}" for label, s in zip(labels, torch.as_tensor(pred["scores"]).tolist())]
        shapes = _box_shapes(pred["boxes"], colors)
        if targets is not None:
            shapes = _box_shapes(targets[i]["boxes"], ["white"] * len(targets[i]["boxes"]), "dash", 1.5) + shapes
        first = len(fig.data)
        fig.add_trace(_image_trace(image))
        fig.add_trace(_labels_trace(pred["boxes"], texts, colors))
        per_image.append((first, first + 2, shapes))
    for i, (start, stop, shapes) in enumerate(per_image):
        visible = [start <= k < stop for k in range(len(fig.data))]
        steps.append({"method": "update", "label": str(i), "args": [{"visible": visible}, {"shapes": shapes}]})
    for k, trace in enumerate(fig.data):
        trace.visible = k < 2
    layout = {"title": title, "height": height, "shapes": per_image[0][2] if per_image else [],
              "xaxis": {"showticklabels": False, "title": "x (píxeles)"},
              "yaxis": {"showticklabels": False, "title": "y (píxeles)", "scaleanchor": "x"}}  # fmt: skip
    if len(per_image) > 1:
        layout["sliders"] = [{"active": 0, "currentvalue": {"prefix": "imagen "}, "steps": steps, "pad": {"t": 30}}]
    fig.update_layout(**layout)
    return fig


def cost_matrix_figure(
    costs: Sequence[torch.Tensor],
    assignments: Sequence[tuple[torch.Tensor, torch.Tensor]],
    object_names: Sequence[str],
    step_labels: Sequence[str],
    title: str = "Costo de emparejamiento",
) -> go.Figure:
    """Heatmaps of ``(N, M)`` matching costs with the chosen pairs marked; a slider walks the steps.

    Args:
        costs: one ``(N, M)`` cost matrix per step (a decoder layer, an image…).
        assignments: per step, ``(pred_indices, target_indices)`` from the matcher.
        object_names: the M column names.
        step_labels: the slider's label of each step.
        title: figure title.
    """
    fig = go.Figure()
    zmin = min(float(c.min()) for c in costs)
    zmax = max(float(c.max()) for c in costs)
    for i, (cost, (rows, cols)) in enumerate(zip(costs, assignments)):
        N, M = cost.shape
        fig.add_trace(go.Heatmap(
            z=cost.numpy(), x=list(object_names), y=[f"consulta {n}" for n in range(N)], colorscale="Viridis",
            zmin=zmin, zmax=zmax, colorbar={"title": "costo"}, visible=i == 0,
            hovertemplate="%{y} × %{x}<br>costo %{z:.2f}<extra></extra>",
        ))  # fmt: skip
        fig.add_trace(go.Scatter(
            x=[object_names[j] for j in cols.tolist()], y=[f"consulta {n}" for n in rows.tolist()], mode="markers",
            marker={"symbol": "square-open", "size": 22, "color": "red", "line": {"width": 3}}, name="emparejado",
            visible=i == 0, hoverinfo="skip",
        ))  # fmt: skip
    steps = [
        {"method": "update", "label": label,
         "args": [{"visible": [k // 2 == i for k in range(2 * len(costs))]}]}
        for i, label in enumerate(step_labels)
    ]  # fmt: skip
    fig.update_layout(
        title=title, height=480, xaxis_title="objeto anotado", yaxis_title="predicción (consulta)",
        yaxis_autorange="reversed", legend={"orientation": "h", "y": -0.15},
        sliders=[{"active": 0, "steps": steps, "pad": {"t": 60}}] if len(costs) > 1 else [],
    )  # fmt: skip
    return fig


def threshold_figure(
    image,
    boxes: torch.Tensor,
    probs: torch.Tensor,
    phrases: Sequence[str],
    thresholds: Sequence[float],
    text_threshold: float,
    title: str = "Umbral de caja",
) -> go.Figure:
    """One image's candidate boxes; a slider sets ``box_threshold`` and shows what survives.

    Args:
        image: ``(3, H, W)``.
        boxes: ``(N, 4)`` xyxy pixels of every query.
        probs: ``(N, P)`` phrase probabilities of every query.
        phrases: the P phrases.
        thresholds: the slider's box thresholds.
        text_threshold: below it a box is drawn unnamed (grey, ``"?"``).
        title: figure title.
    """
    fig = go.Figure([_image_trace(image)])
    scores, best = probs.max(-1)
    steps = []
    for i, threshold in enumerate(thresholds):
        keep = (scores >= threshold).nonzero().flatten().tolist()
        named = [bool(probs[k, best[k]] >= text_threshold) for k in keep]
        colors = [PALETTE[int(best[k]) % len(PALETTE)] if ok else "#7f7f7f" for k, ok in zip(keep, named)]
        texts = [f"{phrases[int(best[k])] if ok else '?'} {float(scores[k]):.2f}" for k, ok in zip(keep, named)]
        fig.add_trace(_labels_trace(boxes[keep], texts, colors))
        fig.data[-1].visible = i == 0
        shapes = _box_shapes(boxes[keep], colors)
        visible = [True] + [k == i for k in range(len(thresholds))]
        steps.append({"method": "update", "label": f"{threshold:.2f}",
                      "args": [{"visible": visible}, {"shapes": shapes, "title": f"{title} = {threshold:.2f}: "
                                                      f"{len(keep)} cajas"}]})  # fmt: skip
    first = steps[0]["args"][1]
    fig.update_layout(
        title=first["title"], shapes=first["shapes"], height=480,
        xaxis={"showticklabels": False, "title": "x (píxeles)"},
        yaxis={"showticklabels": False, "title": "y (píxeles)", "scaleanchor": "x"},
        sliders=[{"active": 0, "currentvalue": {"prefix": "box_threshold = "}, "steps": steps, "pad": {"t": 30}}],
    )  # fmt: skip
    return fig
