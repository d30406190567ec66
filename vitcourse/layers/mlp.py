"""The position-wise feed-forward network (FFN) of a Transformer block.

``FFN(x) = act(x W₁ + b₁) W₂ + b₂``, applied to every token independently. The paper
uses ReLU and a hidden size of ``4 D``; ViT uses GELU. Names ``fc1``/``fc2`` follow timm.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "MLP", "QuickGELU", "activation_layer"]


class QuickGELU(nn.Module):
    """``x · σ(1.702 x)``, the sigmoid approximation of GELU that OpenAI's CLIP was trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply elementwise."""
        return x * torch.sigmoid(1.702 * x)


#: Activation names used by configs (Hugging Face's names in comments) → module factories.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,  # the exact GELU, x Φ(x) (ViT, BERT, MBart)
    "gelu_tanh": partial(nn.GELU, approximate="tanh"),  # "gelu_new": GPT-1, GPT-2, ImageGPT
    "quick_gelu": QuickGELU,  # OpenAI's CLIP
    "relu": nn.ReLU,  # the 2017 Transformer
    "silu": nn.SiLU,
}


def activation_layer(name: str) -> Callable[[], nn.Module]:
    """The factory of an activation by name (a key of :data:`ACTIVATIONS`).

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """Two linear layers with a non-linearity in between.

    Args:
        in_features: input dimension ``D``.
        hidden_features: hidden dimension (``4 D`` by default).
        out_features: output dimension (``D`` by default).
        act_layer: activation class (``nn.GELU`` as in ViT; ``nn.ReLU`` as in the 2017
            paper).
        dropout: dropout after the activation and after the second layer.

    Shapes:
        ``(..., in_features)`` → ``(..., out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        hidden_features = hidden_features or 4 * in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the FFN to every token."""
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
