"""Checks of TP1: patch size and embedding dimension; a learned positional embedding.

Part 1 (the sweep over patch size × embedding dimension) is run by the notebook
itself; what the student writes there is the analysis, graded by the instructor.
Part 2 asks for ``LearnedPositionalEmbedding`` as the course's TP1 writes it,
``nn.Parameter(torch.randn(1, num_patches, embed_dim))``: standard normal values (std 1,
not ViT's 0.02). Its tests compare it with :class:`CourseLearnedPositionalEmbedding`,
the package's layer with that initialisation (positional arguments only:
``(num_positions, embed_dim)``, so the student's own argument names are fine).
"""

from __future__ import annotations

import torch

from ..layers import LearnedPositionalEmbedding
from .probes import parameter_shapes, set_parameters
from .registry import Assignment

__all__ = ["CourseLearnedPositionalEmbedding", "TP"]


class CourseLearnedPositionalEmbedding(LearnedPositionalEmbedding):
    """The TP's table: :class:`~vitcourse.layers.LearnedPositionalEmbedding` drawn with
    ``torch.randn`` (standard normal), as the course's TP1 asks.

    Args:
        num_positions: maximum sequence length ``N``.
        embed_dim: token dimension ``D``.
    """

    def __init__(self, num_positions: int, embed_dim: int) -> None:
        super().__init__(num_positions, embed_dim, init_std=1.0)


TP = Assignment("tp1", title="TP1: parches, dimensión de la incrustación y codificaciones posicionales aprendidas")

TP.part(
    "tradeoffs",
    title="Ventajas y desventajas de más o menos parches y dimensiones",
    points=4,
    manual=True,
    description="La respuesta escrita de la parte 1, apoyada en las cifras y los gráficos del barrido.",
)

learned_pos = TP.part(
    "learned_pos",
    title="LearnedPositionalEmbedding",
    points=4,
    target="LearnedPositionalEmbedding",
    reference=CourseLearnedPositionalEmbedding,
    description=(
        "Una tabla entrenable de forma $(1, N, D)$, inicializada con `torch.randn` (normales estándar) como pide "
        "la consigna, que se suma a los tokens $(B, L, D)$ con $L \\le N$."
    ),
)

# Odd, distinct sizes so that a transposed or misplaced dimension cannot pass by accident.
NUM_POSITIONS, EMBED_DIM = 7, 6


@learned_pos.test(
    "Registra la tabla como un único parámetro entrenable de forma (1, N, D)",
    hint="Guardala en un atributo como nn.Parameter(...): un tensor común no se entrena ni aparece en parameters().",
)
def parameters(cls):
    return {"formas de los parámetros": parameter_shapes(cls(NUM_POSITIONS, EMBED_DIM))}


@learned_pos.test(
    "Empieza con valores normales estándar, como torch.randn (media 0, desvío 1)",
    rtol=0.1,
    hint="nn.Parameter(torch.randn(1, num_positions, embed_dim)), como en la consigna: sin escalar.",
)
def initial_values(cls):
    values = torch.cat([p.detach().flatten() for p in cls(64, 32).parameters()])
    return {"desvío de los valores iniciales": float(values.std())}


@learned_pos.test(
    "Suma a cada token el vector de su posición",
    weight=2,
    hint="La salida es x + tabla: misma forma que x, sin concatenar ni multiplicar.",
)
def adds_the_table(cls):
    x = torch.randn(2, NUM_POSITIONS, EMBED_DIM)
    module = set_parameters(cls(NUM_POSITIONS, EMBED_DIM), seed=1)
    return {"salida": module(x)}


@learned_pos.test(
    "Con L < N tokens usa las primeras L posiciones",
    hint="Recortá la tabla a x.shape[1] posiciones: weight[:, :L].",
)
def shorter_sequences(cls):
    x = torch.randn(3, 4, EMBED_DIM)
    module = set_parameters(cls(NUM_POSITIONS, EMBED_DIM), seed=2)
    return {"salida": module(x)}


@learned_pos.test(
    "No modifica la entrada",
    hint="Evitá las operaciones in place como x += ...; devolvé x + tabla.",
)
def input_untouched(cls):
    x = torch.randn(2, NUM_POSITIONS, EMBED_DIM)
    before = x.clone()
    set_parameters(cls(NUM_POSITIONS, EMBED_DIM), seed=3)(x)
    return {"la entrada queda igual": bool(torch.equal(x, before))}


@learned_pos.test(
    "El gradiente llega a la tabla y a los tokens",
    hint="No uses .detach(), .data ni torch.no_grad() en forward.",
)
def gradients(cls):
    x = torch.randn(2, 5, EMBED_DIM, requires_grad=True)
    weights = torch.randn(2, 5, EMBED_DIM)  # drawn before the student's code runs
    module = set_parameters(cls(NUM_POSITIONS, EMBED_DIM), seed=4)
    (module(x) * weights).sum().backward()
    return {"gradiente de x": x.grad, "gradiente de la tabla": [p.grad for p in module.parameters()]}


TP.part(
    "questions",
    title="Qué aprende la tabla: las tres preguntas de la parte 2",
    points=2,
    manual=True,
    description="Las respuestas escritas sobre la estructura 2-D, el modelo sin posiciones y tabla contra seno/coseno.",
)
