"""Small parts SAM's encoder and decoder share: a channels-first LayerNorm and an n-layer MLP."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerNorm2d", "StackedMLP"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a feature map (each pixel normalised on its own).

    Args:
        num_channels: ``C``.
        eps: added to the variance (1e-6 in SAM).

    Shapes:
        ``(B, C, H, W)`` → ``(B, C, H, W)``.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise every pixel's ``C`` values."""
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class StackedMLP(nn.Module):
    """``num_layers`` linear layers with ReLU in between (SAM's hypernetworks and IoU head).

    Args:
        in_dim: input features.
        hidden_dim: features of every hidden layer.
        out_dim: output features.
        num_layers: linear layers, at least 2.
        sigmoid_output: squash the output to (0, 1).

    Shapes:
        ``(..., in_dim)`` → ``(..., out_dim)``.
    """

    def __init__(
        self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, sigmoid_output: bool = False
    ) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"num_layers must be at least 2 (in and out), got {num_layers}")
        sizes = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layers."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return torch.sigmoid(x) if self.sigmoid_output else x
