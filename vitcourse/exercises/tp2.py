"""TP2: a ViT from scratch, its parameter count, and the ``batch_first`` bug of the original TP.

* :func:`vit_num_params` and :func:`vit_param_breakdown`: the number of parameters of a
  ViT classifier as a formula of its hyper-parameters (what TP2 asks students to derive);
* :func:`batch_influence`: which samples of a batch change which outputs. A per-sample
  model gives the identity matrix; anything else mixes samples;
* :class:`TorchEncoderViT`: a ViT whose encoder is PyTorch's ``nn.TransformerEncoder``,
  as the original TP built it. With ``batch_first=False`` (PyTorch's default) and
  ``(B, N, D)`` tensors, PyTorch reads the batch axis as the sequence: attention then
  runs across the *images* of the batch, at each token position.

The per-block count of a pre-norm encoder block with ``D = embed_dim`` and MLP width
``M = int(D * mlp_ratio)``::

    LayerNorm ×2       4D
    Q, K, V            3D² + 3D
    output projection  D² + D
    MLP                DM + M + MD + D

which is ``12D² + 13D`` for ``mlp_ratio = 4``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import PatchEmbedding

__all__ = ["TorchEncoderViT", "batch_influence", "vit_forward_macs", "vit_num_params", "vit_param_breakdown"]


def vit_param_breakdown(
    img_size: int,
    patch_size: int,
    in_chans: int = 3,
    num_classes: int = 10,
    embed_dim: int = 192,
    depth: int = 6,
    mlp_ratio: float = 4.0,
) -> dict[str, int]:
    """Parameters of each part of a ViT classifier (biases everywhere, ``[CLS]`` pooling).

    Args:
        img_size: side ``H = W`` of the input, a multiple of ``patch_size``.
        patch_size: side ``P`` of the patches.
        in_chans: input channels ``C``.
        num_classes: classes ``K`` of the linear head.
        embed_dim: token dimension ``D``.
        depth: encoder blocks.
        mlp_ratio: MLP width over ``D`` (the hidden width is ``int(D * mlp_ratio)``).

    Returns:
        ``{"patch_embed", "cls_token", "pos_embed", "blocks", "norm", "head"}``: the
        projection ``P²CD + D``, the token ``D``, one position per token ``(N + 1) D``,
        ``depth`` blocks (module docstring), the final LayerNorm ``2D`` and the head ``DK + K``.
    """
    if img_size % patch_size:
        raise ValueError(
            f"img_size={img_size} is not a multiple of patch_size={patch_size}; the formula counts a grid of "
            "whole patches, so pick a patch_size that divides img_size"
        )
    D, M = embed_dim, int(embed_dim * mlp_ratio)
    num_patches = (img_size // patch_size) ** 2
    block = 4 * D + (3 * D * D + 3 * D) + (D * D + D) + (D * M + M + M * D + D)
    return {
        "patch_embed": patch_size * patch_size * in_chans * D + D,
        "cls_token": D,
        "pos_embed": (num_patches + 1) * D,
        "blocks": depth * block,
        "norm": 2 * D,
        "head": D * num_classes + num_classes,
    }


def vit_num_params(
    img_size: int,
    patch_size: int,
    in_chans: int = 3,
    num_classes: int = 10,
    embed_dim: int = 192,
    depth: int = 6,
    mlp_ratio: float = 4.0,
) -> int:
    """Total parameters of a ViT classifier: the sum of :func:`vit_param_breakdown`."""
    return sum(vit_param_breakdown(img_size, patch_size, in_chans, num_classes, embed_dim, depth, mlp_ratio).values())


def vit_forward_macs(
    img_size: int,
    patch_size: int,
    in_chans: int = 3,
    num_classes: int = 10,
    embed_dim: int = 192,
    depth: int = 6,
    mlp_ratio: float = 4.0,
) -> int:
    """Multiply-adds of one image's forward pass through a ViT classifier, counting the matrix products.

    With ``T = N + 1`` tokens and MLP width ``M``, each block costs ``T·3D²`` (Q, K, V),
    ``2·T²·D`` (scores and weighted sum of the values, all heads together), ``T·D²``
    (output projection) and ``2·T·D·M`` (MLP); the patch embedding ``N·P²C·D`` and the
    head ``D·K``. LayerNorm, softmax and GELU are left out (a few operations per value).
    A training step costs about three times the forward pass.

    Args:
        img_size, patch_size, in_chans, num_classes, embed_dim, depth, mlp_ratio: as in :func:`vit_param_breakdown`.

    Returns:
        Multiply-adds (one FLOP is half of one; FLOPs ≈ 2 × MACs).
    """
    if img_size % patch_size:
        raise ValueError(f"img_size={img_size} is not a multiple of patch_size={patch_size}; pick one that divides it")
    D, M = embed_dim, int(embed_dim * mlp_ratio)
    N = (img_size // patch_size) ** 2
    T = N + 1
    block = T * 3 * D * D + 2 * T * T * D + T * D * D + 2 * T * D * M
    return N * patch_size * patch_size * in_chans * D + depth * block + D * num_classes


@torch.no_grad()
def batch_influence(model: nn.Module, x: torch.Tensor, atol: float = 1e-6) -> torch.Tensor:
    """Which inputs of a batch change which outputs.

    For every sample ``j``, replace ``x[j]`` with new random values and see which
    outputs move. The model runs in eval mode (dropout would move every output on its
    own) and gets its mode back afterwards.

    Args:
        model: maps a batch ``(B, ...)`` to outputs ``(B, ...)``.
        x: a batch, ``(B, ...)``; not modified.
        atol: an output counts as changed when some value moved by more than this.

    Returns:
        ``(B, B)`` bool: ``[i, j]`` is True when changing sample ``j`` changed output ``i``.
        A model that treats samples independently gives the identity matrix.
    """
    was_training = model.training
    model.eval()
    try:
        reference = model(x)  # (B, ...)
        influence = torch.zeros(len(x), len(x), dtype=torch.bool)
        for j in range(len(x)):
            changed = x.clone()
            changed[j] = torch.randn_like(x[j])
            moved = (model(changed) - reference).abs().flatten(1).amax(dim=1)  # (B,)
            influence[:, j] = moved > atol
    finally:
        model.train(was_training)
    return influence


class TorchEncoderViT(nn.Module):
    """A ViT built on ``nn.TransformerEncoder``, the way the original TP built it.

    Everything but the encoder is as in :class:`vitcourse.models.ViT` (patch embedding,
    learned ``[CLS]`` and positions, final LayerNorm, linear head). The encoder is
    ``depth`` pre-norm ``nn.TransformerEncoderLayer`` with GELU. The tokens are always
    ``(B, T, D)``: with ``batch_first=True`` that is what the layers expect; with
    ``batch_first=False`` they read it as ``(sequence, batch, D)``, so every image
    attends to the tokens *at the same position in the other images* of the batch.

    Args:
        img_size, patch_size, in_chans, num_classes, embed_dim, depth, num_heads,
            mlp_ratio: as in :class:`vitcourse.models.ViTConfig`.
        batch_first: passed to ``nn.TransformerEncoderLayer``; False reproduces the bug.
        pool: ``"cls"`` classifies the ``[CLS]`` token, ``"mean"`` the mean of the patch tokens.
        dropout: dropout inside the encoder layers (PyTorch's default is 0.1).

    Shapes:
        images ``(B, C, H, W)`` → logits ``(B, num_classes)``.
    """

    def __init__(
        self,
        img_size: int,
        patch_size: int,
        in_chans: int = 3,
        num_classes: int = 10,
        embed_dim: int = 192,
        depth: int = 6,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        batch_first: bool = True,
        pool: str = "cls",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f'pool must be "cls" or "mean", got {pool!r}')
        self.pool = pool
        self.patch_embed = PatchEmbedding(img_size, patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.randn(1, self.patch_embed.num_patches + 1, embed_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            embed_dim,
            num_heads,
            dim_feedforward=int(embed_dim * mlp_ratio),
            dropout=dropout,
            activation="gelu",
            batch_first=batch_first,
            norm_first=True,
        )
        # Nested tensors only apply to batch-first encoders; say so instead of warning.
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Images to output tokens ``(B, 1 + N, D)`` after the final LayerNorm."""
        x = self.patch_embed(images)  # (B, N, D)
        cls = self.cls_token.expand(len(x), -1, -1)  # (B, 1, D)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, 1 + N, D)
        return self.norm(self.encoder(x))  # the bug, when batch_first=False: read as (1 + N, B, D)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Classify: ``(B, C, H, W)`` → ``(B, num_classes)``."""
        features = self.forward_features(images)
        pooled = features[:, 0] if self.pool == "cls" else features[:, 1:].mean(dim=1)
        return self.head(pooled)
