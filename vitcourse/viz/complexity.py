"""The cost of attention as a figure: memory of the attention matrices against image size."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from ..book import thousands
from ..complexity import attention_memory_bytes, format_bytes, num_patches

__all__ = ["attention_memory_figure"]


def attention_memory_figure(
    sides: Sequence[int],
    patch_size: int = 16,
    layers: int = 48,
    heads: int = 16,
    bytes_per_value: int = 4,
    reference_bytes: float | None = None,
    reference_label: str = "",
    title: str = "Memoria de las matrices de atención",
) -> go.Figure:
    """Memory of every attention matrix of a forward pass against the side of a square image.

    Two curves: each pixel as a token (``N = R²``, so memory grows as ``R⁴``) and
    ``patch_size × patch_size`` patches as tokens (``N = ⌈R/P⌉²``). The y axis is
    logarithmic; hovering shows the tokens and the memory in readable units.

    Args:
        sides: image sides ``R`` in pixels.
        patch_size: side ``P`` of the patches.
        layers: encoder layers.
        heads: heads per layer.
        bytes_per_value: 4 for float32, 2 for float16/bfloat16.
        reference_bytes: draw a horizontal line at this size (e.g. one GPU's memory).
        reference_label: text of that line.
        title: figure title.

    Returns:
        A plotly figure.
    """
    sides = [int(side) for side in sides]
    if not sides or min(sides) < 1:
        raise ValueError(f"sides must be positive image sizes in pixels, got {sides}")
    curves = {
        "píxeles como tokens": [side * side for side in sides],
        f"parches de {patch_size}×{patch_size}": [num_patches(side, patch_size, pad=True) for side in sides],
    }
    fig = go.Figure()
    for name, tokens in curves.items():
        memory = [attention_memory_bytes(n, layers, heads, bytes_per_value) for n in tokens]
        fig.add_trace(
            go.Scatter(
                x=sides,
                y=memory,
                name=name,
                mode="lines+markers",
                customdata=[[thousands(n), format_bytes(m)] for n, m in zip(tokens, memory)],
                hovertemplate="lado %{x} px<br>%{customdata[0]} tokens<br>%{customdata[1]}<extra>" + name + "</extra>",
            )
        )
    if reference_bytes is not None:
        fig.add_hline(y=reference_bytes, line_dash="dash", line_color="gray", annotation_text=reference_label)
    ticks = [1024**k for k in range(7)]
    fig.update_layout(
        title=title,
        xaxis_title="lado de la imagen R (píxeles)",
        yaxis={
            "title": f"bytes ({layers} capas × {heads} cabezas, {bytes_per_value} bytes por valor)",
            "type": "log",
            "tickvals": ticks,
            "ticktext": [format_bytes(t) for t in ticks],
        },
        legend={"x": 0.02, "y": 0.98},
        height=440,
    )
    return fig
