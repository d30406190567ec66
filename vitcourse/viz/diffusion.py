"""Figures of the diffusion section: an image grid per guidance scale, behind a slider."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from .ocr import image_data_uri

__all__ = ["guidance_slider", "tile"]


def tile(images: torch.Tensor, columns: int, pad: int = 2) -> np.ndarray:
    """Images ``(B, 1, H, W)`` in ``[-1, 1]`` as one grey ``uint8`` mosaic, row by row.

    Returns:
        ``(rows·(H + pad), columns·(W + pad))`` with white gaps.
    """
    B, _, H, W = images.shape
    rows = -(-B // columns)
    canvas = np.full((rows * (H + pad), columns * (W + pad)), 255, dtype=np.uint8)
    pixels = ((images[:, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()  # (B, H, W)
    for i, image in enumerate(pixels):
        r, c = divmod(i, columns)
        canvas[r * (H + pad) : r * (H + pad) + H, c * (W + pad) : c * (W + pad) + W] = image
    return canvas


def guidance_slider(mosaics: Sequence[np.ndarray], scales: Sequence[float], captions: Sequence[str]) -> go.Figure:
    """One mosaic per guidance scale, chosen with a slider.

    Args:
        mosaics: grey ``uint8`` images of the same size (from :func:`tile`).
        scales: the guidance scale of each.
        captions: the title shown at each position (e.g. the classifier's accuracy).

    Returns:
        A plotly figure.
    """
    if not len(mosaics) == len(scales) == len(captions):
        raise ValueError(f"got {len(mosaics)} mosaics, {len(scales)} scales, {len(captions)} captions; one each")
    figure = go.Figure()
    for i, mosaic in enumerate(mosaics):
        figure.add_trace(go.Image(source=image_data_uri(mosaic), visible=i == 0, hoverinfo="skip"))
    steps = [
        {"label": f"{s:g}", "method": "update",
         "args": [{"visible": [j == i for j in range(len(mosaics))]}, {"title.text": caption}]}
        for i, (s, caption) in enumerate(zip(scales, captions))
    ]  # fmt: skip
    height, width = mosaics[0].shape
    figure.update_layout(
        title={"text": captions[0]},
        sliders=[{"active": 0, "steps": steps, "currentvalue": {"prefix": "escala de guía s = "}, "pad": {"t": 30}}],
        height=int(height * 600 / width) + 200,
        width=700,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure
