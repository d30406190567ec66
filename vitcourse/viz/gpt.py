"""Figures of the GPT chapter: sampling with a temperature slider, generation step by
step, learning curves against n-gram baselines, accuracy against shots."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import plotly.graph_objects as go
import torch

__all__ = ["generation_steps_figure", "lm_curves_figure", "shots_figure", "temperature_figure"]


def _slider(labels: Sequence[str], prefix: str, titles: Sequence[str], traces_per_step: int = 1) -> dict:
    n = len(labels)
    return {
        "active": 0,
        "currentvalue": {"prefix": prefix},
        "steps": [
            {
                "method": "update",
                "label": label,
                "args": [
                    {"visible": [i // traces_per_step == j for i in range(n * traces_per_step)]},
                    {"title": titles[j]},
                ],
            }
            for j, label in enumerate(labels)
        ],
    }


def temperature_figure(
    logits: torch.Tensor,
    decode: Callable[[int], str],
    temperatures: Sequence[float] = (0.2, 0.5, 0.8, 1.0, 1.5, 2.0),
    top: int = 15,
    title: str = "Distribución del próximo token",
) -> go.Figure:
    """The next token's probabilities ``softmax(logits / T)``, a slider over ``T``.

    Args:
        logits: ``(V,)`` the model's scores for the next token.
        decode: token id → its text, for the bar labels.
        temperatures: values of ``T`` on the slider (> 0).
        top: bars shown (the most probable tokens at ``T = 1``).
        title: figure title.

    Returns:
        A plotly bar chart; the hover shows each token's probability.
    """
    order = logits.argsort(descending=True)[:top]
    labels = [repr(decode(int(i)))[1:-1] or "∅" for i in order]
    fig = go.Figure()
    titles = []
    for j, t in enumerate(temperatures):
        probs = (logits / t).softmax(-1)
        shown = probs[order]
        fig.add_trace(go.Bar(x=labels, y=shown.tolist(), visible=j == 0, marker_color="#4c72b0",
                             hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
        titles.append(f"{title}: T = {t:g} (los {top} más probables suman {float(shown.sum()):.2f})")
    fig.update_layout(title=titles[0], xaxis_title="token", yaxis_title="probabilidad", yaxis_range=[0, 1],
                      height=420, sliders=[_slider([f"{t:g}" for t in temperatures], "T = ", titles)])
    return fig


def generation_steps_figure(
    steps: Sequence[Mapping], title: str = "Generación paso a paso"
) -> go.Figure:
    """One bar chart per generation step: the candidates for the next token, the chosen one
    highlighted; a slider walks through the steps.

    Args:
        steps: per step, ``{"text": text so far, "tokens": [str], "probs": [float],
            "chosen": index into tokens}``.
        title: figure title.

    Returns:
        A plotly figure.
    """
    fig = go.Figure()
    titles = []
    for j, step in enumerate(steps):
        colors = ["#dd8452" if i == step["chosen"] else "#4c72b0" for i in range(len(step["tokens"]))]
        labels = [repr(t)[1:-1] or "∅" for t in step["tokens"]]
        fig.add_trace(go.Bar(x=labels, y=step["probs"], marker_color=colors, visible=j == 0,
                             hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
        tail = step["text"][-70:].replace("\n", " ⏎ ")
        titles.append(f"{title}, paso {j + 1}: «…{tail}»")
    fig.update_layout(title=titles[0], xaxis_title="candidato (naranja: el elegido)", yaxis_title="probabilidad",
                      height=440, sliders=[_slider([str(j + 1) for j in range(len(steps))], "paso ", titles)])
    return fig


def lm_curves_figure(history: Mapping, baselines: Mapping[str, float], title: str) -> go.Figure:
    """Training and validation cross-entropy per step, with n-gram baselines as lines.

    Args:
        history: ``{"steps", "train_loss", "val_loss"}`` lists.
        baselines: name → validation cross-entropy (nats per token).
        title: figure title.
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=history["steps"], y=history["train_loss"], name="GPT, entrenamiento"))
    fig.add_trace(go.Scatter(x=history["steps"], y=history["val_loss"], name="GPT, validación"))
    for name, value in baselines.items():
        fig.add_hline(y=value, line_dash="dot", annotation_text=f"{name} ({value:.2f})",
                      annotation_position="top right")
    fig.update_layout(title=title, xaxis_title="paso de optimización",
                      yaxis_title="entropía cruzada (nats por token)", height=420)
    return fig


def shots_figure(results: Mapping[str, Mapping], shots: Sequence[int], title: str) -> go.Figure:
    """Accuracy against the number of demonstrations ``k`` in the prompt, one line per series.

    Args:
        results: series name → ``{str(k): {"exact": …, "letters": …}}``.
        shots: the values of ``k``.
        title: figure title.
    """
    fig = go.Figure()
    for name, by_k in results.items():
        fig.add_trace(go.Scatter(x=list(shots), y=[by_k[str(k)]["exact"] for k in shots], mode="lines+markers",
                                 name=name))
    fig.update_layout(title=title, xaxis_title="demostraciones en el prompt (k)", yaxis_title="exactitud",
                      yaxis_range=[0, 1], height=400, xaxis_tickvals=list(shots))
    return fig
