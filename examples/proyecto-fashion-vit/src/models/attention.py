"""Where the model looks: one attention map per image, on the grid of patches.

* ViT and DeiT: **attention rollout** (Abnar & Zuidema, 2020, ``vitcourse.explain``):
  the ``[CLS]`` token's share of each patch, through every layer and the residuals;
* Swin: the attention each token receives in the last stage, whose single window sees
  the whole (downsampled) image.

:func:`deletion_check` asks whether a map means anything: hide the patches it ranks
highest and see whether the accuracy falls more than when hiding as many random ones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ProjectError


def grid_size(model: nn.Module) -> tuple[int, int]:
    """``(rows, columns)`` of the map :func:`attention_maps` returns."""
    if (
        hasattr(model, "patch_embed")
        and hasattr(model.patch_embed, "grid_size")
        and hasattr(model, "blocks")
    ):
        return tuple(model.patch_embed.grid_size)
    side = model.config.resolutions[-1]  # Swin: the last stage's token grid
    return side, side


@torch.no_grad()
def attention_maps(
    model: nn.Module, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and one attention map per image.

    Args:
        model: a ViT/DeiT (``num_prefix_tokens``) or a Swin of ``vitcourse.models``.
        images: ``(B, C, H, W)``, normalised.

    Returns:
        ``(logits (B, K), maps (B, rows, columns))``; each map sums to 1.
    """
    from vitcourse.explain import rollout_cls_map

    model.eval()
    logits, attentions = model(images, return_attention=True)
    rows, columns = grid_size(model)
    if hasattr(model, "num_prefix_tokens"):
        weights = rollout_cls_map(
            attentions, num_prefix_tokens=model.num_prefix_tokens
        )  # (B, N)
    else:
        last = attentions[-1][
            -1
        ]  # Swin, last stage, last block: (B, windows, heads, T, T)
        if last.shape[1] != 1:
            raise ProjectError(
                "Swin maps need a last stage of one window, "
                f"got {last.shape[1]} windows: "
                "set model.config.window_size to the last stage's grid side"
            )
        weights = (
            last[:, 0].mean(dim=1).mean(dim=1)
        )  # attention received per token, (B, T)
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return logits, weights.reshape(-1, rows, columns)


def hide_patches(images: torch.Tensor, keep: torch.Tensor, fill: float) -> torch.Tensor:
    """Images with the patches where ``keep`` is False set to ``fill``.

    Args:
        images: ``(B, C, H, W)``.
        keep: ``(B, rows, columns)`` booleans.
        fill: the (normalised) value of a hidden pixel: the background.
    """
    B, _, H, W = images.shape
    mask = nn.functional.interpolate(
        keep[:, None].float(), size=(H, W), mode="nearest"
    )  # (B, 1, H, W)
    return images * mask + fill * (1 - mask)


@torch.no_grad()
def deletion_check(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    fraction: float,
    fill: float,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy with the most attended ``fraction`` of patches hidden, or random ones.

    Returns:
        ``{"images", "fraction", "accuracy", "accuracy_without_top",
        "accuracy_without_random"}``.
    """
    logits, maps = attention_maps(model, images)
    B, rows, columns = maps.shape
    hidden = max(1, round(fraction * rows * columns))
    flat = maps.reshape(B, -1)
    keep_top = torch.ones_like(flat, dtype=torch.bool).scatter(
        1, flat.topk(hidden, dim=1).indices, False
    )
    generator = torch.Generator().manual_seed(seed)
    random_order = torch.rand(flat.shape, generator=generator).argsort(dim=1)[
        :, :hidden
    ]
    keep_random = torch.ones_like(flat, dtype=torch.bool).scatter(
        1, random_order, False
    )

    def accuracy(keep: torch.Tensor) -> float:
        masked = hide_patches(images, keep.reshape(B, rows, columns), fill)
        return (model(masked).argmax(-1) == labels).float().mean().item()

    return {
        "images": B,
        "fraction": hidden / (rows * columns),
        "accuracy": (logits.argmax(-1) == labels).float().mean().item(),
        "accuracy_without_top": accuracy(keep_top),
        "accuracy_without_random": accuracy(keep_random),
    }
