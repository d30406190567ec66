"""Figures for video segmentation (SAM 2, chapter 6): masks over frames and the memory bank.

:func:`tracking_slider` is a plotly figure that works in the static book: each slider
position is one frame, drawn as a PNG data URI, with each method's mask over it and the
frames the memory bank held at that moment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from .ocr import image_data_uri

__all__ = ["overlay", "tracking_slider"]

#: Mask colours, one per method, RGB in [0, 1].
COLOURS = ((1.0, 0.85, 0.0), (0.0, 0.8, 1.0), (1.0, 0.3, 0.6))


def overlay(frame: torch.Tensor, mask: torch.Tensor, colour=COLOURS[0], alpha: float = 0.55) -> np.ndarray:
    """A frame ``(3, S, S)`` in ``[0, 1]`` with a bool mask ``(S, S)`` painted over: ``(S, S, 3)``."""
    image = frame.permute(1, 2, 0).numpy().astype(np.float32)
    m = mask.numpy()[..., None].astype(np.float32) * alpha
    return image * (1 - m) + np.asarray(colour, dtype=np.float32) * m


def _upscale(image: np.ndarray, factor: int) -> np.ndarray:
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def tracking_slider(
    frames: torch.Tensor,
    masks: Mapping[str, torch.Tensor],
    banks: Sequence[Sequence[int]],
    prompted: Sequence[int],
    title: str = "",
    zoom: int = 4,
) -> go.Figure:
    """One slider position per frame: each method's mask, and the bank's frames as thumbnails.

    Args:
        frames: ``(T, 3, S, S)`` in ``[0, 1]``.
        masks: ``{method: (T, S, S) bool}``, drawn side by side.
        banks: for each frame, the frames the memory bank held after it.
        prompted: the frames a user prompted (their thumbnails get a red border).
        title: the title's common part.
        zoom: pixel enlargement of the frames.

    Returns:
        A plotly figure with a slider.
    """
    T, _, S, _ = frames.shape
    if len(banks) != T or any(len(m) != T for m in masks.values()):
        raise ValueError(f"give a mask per frame for every method and a bank per frame (T = {T})")
    gap = np.ones((S * zoom, zoom * 2, 3), dtype=np.float32)
    thumb = S * zoom // 4
    figure = go.Figure()
    for t in range(T):
        panels = []
        for m, colour in zip(masks.values(), COLOURS):
            panels += [_upscale(overlay(frames[t], m[t], colour), zoom), gap]
        strip = np.ones((S * zoom, max(len(b) for b in banks) * (thumb + 2) + 2, 3), dtype=np.float32)
        for i, f in enumerate(banks[t]):
            small = _upscale(overlay(frames[f], torch.zeros(S, S, dtype=torch.bool)), zoom)[::4, ::4]
            edge = (1.0, 0.0, 0.0) if f in prompted else (0.6, 0.6, 0.6)  # red: prompted
            small[:2], small[-2:], small[:, :2], small[:, -2:] = edge, edge, edge, edge
            strip[2 : 2 + thumb, 2 + i * (thumb + 2) : 2 + i * (thumb + 2) + thumb] = small
        image = (np.concatenate(panels + [strip], axis=1).clip(0, 1) * 255).astype(np.uint8)
        figure.add_trace(go.Image(source=image_data_uri(image), visible=t == 0, hoverinfo="skip"))
    names = " | ".join(masks)
    captions = [f"{title}cuadro {t}: {names} | banco {list(banks[t])}" for t in range(T)]
    steps = [
        {"label": str(t), "method": "update",
         "args": [{"visible": [j == t for j in range(T)]}, {"title.text": captions[t]}]}
        for t in range(T)
    ]  # fmt: skip
    height, width = image.shape[:2]
    figure.update_layout(
        title={"text": captions[0], "font": {"size": 13}},
        sliders=[{"active": 0, "steps": steps, "currentvalue": {"prefix": "cuadro "}, "pad": {"t": 30}}],
        height=int(height * 900 / width) + 220,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        xaxis={"visible": False, "range": [0, width]},
        yaxis={"visible": False, "range": [height, 0], "scaleanchor": "x"},
    )
    return figure
