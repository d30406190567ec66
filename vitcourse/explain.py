r"""Where does a ViT look? Attention maps, attention rollout, and how to check them against the truth.

A ViT's ``[CLS]`` token gathers the image through attention, so its row of each attention
matrix says which patches it read, layer by layer and head by head
(:func:`cls_attention`). One layer's map ignores how the layers compose: layer 2 reads
tokens that already mixed in other tokens at layer 1. **Attention rollout**
(Abnar & Zuidema, 2020) follows that flow through the stack. Each block adds its
attention output to a residual connection, so the token-to-token mixing of block
:math:`l` is modelled as half attention, half identity,

.. math::

    \hat A_l = \tfrac12 \bar A_l + \tfrac12 I, \qquad
    \tilde A = \hat A_L \hat A_{L-1} \cdots \hat A_1,

with :math:`\bar A_l` the heads fused into one matrix (mean, max or min) and each row
renormalised to sum to 1. Row 0 of :math:`\tilde A` says how much of each input token
flowed into the final ``[CLS]`` (:func:`attention_rollout`, :func:`rollout_cls_map`).

Neither map is an explanation with guarantees: rollout assumes the values and MLPs mix
nothing. Where the data has ground truth, check: :func:`patch_coverage` turns a pixel
mask into the fraction of each patch it covers, and :func:`mass_inside` measures how
much of a map falls on the object, to compare with a map that ignores the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["attention_rollout", "cls_attention", "mass_inside", "patch_coverage", "rollout_cls_map"]

HEAD_FUSIONS = ("mean", "max", "min")


def _stack(attentions: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Layers of attention weights as one ``(L, B, h, T, T)`` tensor."""
    if isinstance(attentions, torch.Tensor):
        stacked = attentions
    else:
        if len(attentions) == 0:
            raise ValueError("got no attention weights: pass the list model(x, return_attention=True) returns")
        stacked = torch.stack(list(attentions))
    if stacked.ndim != 5 or stacked.shape[-1] != stacked.shape[-2]:
        raise ValueError(
            f"expected attention weights shaped (B, h, T, T) per layer, i.e. (L, B, h, T, T) stacked, "
            f"got {tuple(stacked.shape)}"
        )
    return stacked.detach().float()


def cls_attention(attentions: Sequence[torch.Tensor] | torch.Tensor, num_prefix_tokens: int = 1) -> torch.Tensor:
    """The ``[CLS]`` token's attention over the patch tokens, for every layer and head.

    Args:
        attentions: one ``(B, h, T, T)`` tensor per layer (what ``ViT.forward(...,
            return_attention=True)`` returns), or those stacked ``(L, B, h, T, T)``.
        num_prefix_tokens: tokens before the patches (1 for ViT's ``[CLS]``, 2 for DeiT);
            ``[CLS]`` is token 0.

    Returns:
        ``(B, L, h, N)`` with ``N = T - num_prefix_tokens``: row 0 of each matrix without
        the prefix columns. (It sums to less than 1: the rest went to prefix tokens.)
    """
    stacked = _stack(attentions)  # (L, B, h, T, T)
    if not 0 < num_prefix_tokens < stacked.shape[-1]:
        raise ValueError(f"num_prefix_tokens must be in [1, {stacked.shape[-1]}), got {num_prefix_tokens}")
    return stacked[:, :, :, 0, num_prefix_tokens:].permute(1, 0, 2, 3)  # (B, L, h, N)


def _fuse_heads(weights: torch.Tensor, head_fusion: str) -> torch.Tensor:
    """``(B, h, T, T)`` → ``(B, T, T)``."""
    if head_fusion == "mean":
        return weights.mean(dim=1)
    if head_fusion == "max":
        return weights.amax(dim=1)
    if head_fusion == "min":
        return weights.amin(dim=1)
    raise ValueError(f"head_fusion must be one of {HEAD_FUSIONS}, got {head_fusion!r}")


def _discard_lowest(weights: torch.Tensor, discard_ratio: float) -> torch.Tensor:
    """Zero the smallest ``discard_ratio`` of each row's entries, never the diagonal."""
    T = weights.shape[-1]
    count = int(T * discard_ratio)
    if count == 0:
        return weights
    diagonal = torch.eye(T, dtype=torch.bool, device=weights.device)
    ranked = weights.masked_fill(diagonal, float("inf"))  # the diagonal always survives
    lowest = ranked.topk(count, dim=-1, largest=False).indices  # (B, T, count)
    return weights.scatter(-1, lowest, 0.0)


def attention_rollout(
    attentions: Sequence[torch.Tensor] | torch.Tensor,
    discard_ratio: float = 0.0,
    head_fusion: str = "mean",
    residual: bool = True,
) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): how much of each input token reaches
    each output token.

    For each layer: fuse the heads, optionally drop each row's weakest links, add the
    identity for the residual connection (``0.5·A + 0.5·I``), renormalise the rows; then
    multiply the layers' matrices from the first to the last.

    Args:
        attentions: one ``(B, h, T, T)`` tensor per layer, first layer first (or stacked
            ``(L, B, h, T, T)``); rows are queries and sum to 1.
        discard_ratio: fraction of each row's entries (the smallest ones, never the
            diagonal) set to zero before adding the identity; 0 keeps everything.
            Dropping the many near-zero links sharpens the map (as in the common
            ``vit-explain`` recipe, which discards 0.9).
        head_fusion: ``"mean"`` (the paper), ``"max"`` or ``"min"`` over heads.
        residual: model the residual connection (``0.5·A + 0.5·I``); without it the
            rollout is the plain product of the attention matrices.

    Returns:
        ``(B, T, T)``: entry ``[b, i, j]`` is the share of input token ``j`` in output
        token ``i``; every row sums to 1 (unless, without ``residual``, a row of some
        layer is all zero, as ``head_fusion="min"`` can make it).
    """
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    stacked = _stack(attentions)  # (L, B, h, T, T)
    L, B, _, T, _ = stacked.shape
    identity = torch.eye(T, device=stacked.device).expand(B, T, T)
    rollout = identity.clone()
    for layer in range(L):
        # (B, T, T)
        fused = _discard_lowest(_fuse_heads(stacked[layer], head_fusion), discard_ratio)
        if residual:
            fused = 0.5 * fused + 0.5 * identity
        # an all-zero row stays zero
        fused = fused / fused.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        rollout = fused @ rollout  # later layers act on what earlier layers produced
    return rollout


def rollout_cls_map(
    attentions: Sequence[torch.Tensor] | torch.Tensor,
    num_prefix_tokens: int = 1,
    discard_ratio: float = 0.0,
    head_fusion: str = "mean",
) -> torch.Tensor:
    """The rollout of the ``[CLS]`` token over the patches, renormalised to sum to 1.

    Args:
        attentions: as in :func:`attention_rollout`.
        num_prefix_tokens: tokens before the patches; ``[CLS]`` is token 0.
        discard_ratio, head_fusion: as in :func:`attention_rollout`.

    Returns:
        ``(B, N)`` weights over the ``N`` patch tokens in raster order, each row summing to 1.
    """
    rollout = attention_rollout(attentions, discard_ratio=discard_ratio, head_fusion=head_fusion)
    if not 0 < num_prefix_tokens < rollout.shape[-1]:
        raise ValueError(f"num_prefix_tokens must be in [1, {rollout.shape[-1]}), got {num_prefix_tokens}")
    patches = rollout[:, 0, num_prefix_tokens:]  # (B, N)
    return patches / patches.sum(dim=-1, keepdim=True)


def patch_coverage(masks: torch.Tensor, patch_size: int) -> torch.Tensor:
    """The fraction of each patch that a pixel mask covers.

    Args:
        masks: ``(H, W)`` or ``(B, H, W)`` boolean (or 0/1) masks; ``H`` and ``W``
            multiples of ``patch_size``.
        patch_size: side ``P`` of the patches.

    Returns:
        ``(N,)`` or ``(B, N)`` floats in ``[0, 1]``, patches in raster order
        (``N = (H/P)·(W/P)``), the same order as the patch tokens.
    """
    single = masks.ndim == 2
    if single:
        masks = masks[None]
    if masks.ndim != 3:
        raise ValueError(f"expected masks shaped (H, W) or (B, H, W), got {tuple(masks.shape)}")
    H, W = masks.shape[-2:]
    if H % patch_size or W % patch_size:
        raise ValueError(f"mask size {H}x{W} is not a multiple of patch_size={patch_size}")
    coverage = F.avg_pool2d(masks[:, None].float(), kernel_size=patch_size)  # (B, 1, H/P, W/P)
    coverage = coverage.flatten(1)  # (B, N)
    return coverage[0] if single else coverage


def mass_inside(weights: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    r"""How much of a map over patches falls on the object: :math:`\sum_j w_j c_j / \sum_j w_j`.

    Spreading each patch's weight evenly over its pixels, this is the share of the
    weight that lands on object pixels. A map that ignores the image (uniform weights)
    scores the object's share of the image's area.

    Args:
        weights: ``(..., N)`` non-negative weights over patches (need not sum to 1).
        coverage: ``(..., N)`` fraction of each patch inside the object (:func:`patch_coverage`),
            broadcastable against ``weights``.

    Returns:
        ``(...)`` values in ``[0, 1]``.
    """
    if weights.shape[-1] != coverage.shape[-1]:
        raise ValueError(
            f"weights and coverage must cover the same patches, got {weights.shape[-1]} and {coverage.shape[-1]}"
        )
    if (weights < 0).any():
        raise ValueError("weights must be non-negative")
    return (weights * coverage).sum(-1) / weights.sum(-1)
