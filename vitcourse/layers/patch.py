"""Images as sequences of patches.

A ViT never sees pixels one by one: it cuts the image into a grid of P×P patches,
flattens each patch into a vector of P·P·C numbers, and projects that vector to
``embed_dim``. This module holds both halves of that story:

* :func:`patchify` / :func:`unpatchify`, written out with ``reshape``/``permute`` so
  every axis can be followed, plus einops twins that read as shape documentation;
* :class:`PatchEmbedding`, which does the cut-and-project either with a ``Linear``
  layer on the flattened patches (the paper's description) or with a ``Conv2d``
  whose kernel and stride equal the patch size (what every implementation runs).

The flattened patch is ordered ``(p1, p2, c)`` (row inside the patch, column inside
the patch, channel), the convention of MAE and of ``lucidrains/vit-pytorch``.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "PatchEmbedding",
    "grid_size_for",
    "patchify",
    "patchify_einops",
    "unpatchify",
    "unpatchify_einops",
]


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    height, width = value
    return int(height), int(width)


def _check_images(images: torch.Tensor, patch_size: int) -> None:
    if images.ndim != 4:
        raise ValueError(
            f"expected a batch of images shaped (B, C, H, W), got a tensor of shape "
            f"{tuple(images.shape)}; add a batch axis with images.unsqueeze(0) for a single image"
        )
    _, _, height, width = images.shape
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"image size {height}x{width} is not divisible by patch_size={patch_size}; "
            f"crop or pad the image first (PatchEmbedding(..., pad=True) pads for you)"
        )


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping patches and flatten each one.

    Args:
        images: ``(B, C, H, W)``; ``H`` and ``W`` must be multiples of ``patch_size``.
        patch_size: side ``P`` of the square patches.

    Returns:
        ``(B, N, P*P*C)`` with ``N = (H/P) * (W/P)`` patches in raster order
        (left to right, top to bottom), each flattened as ``(p1, p2, c)``.
    """
    _check_images(images, patch_size)
    B, C, H, W = images.shape
    P = patch_size
    x = images.reshape(B, C, H // P, P, W // P, P)  # (B, C, gh, p1, gw, p2)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, p1, p2, C)
    return x.reshape(B, (H // P) * (W // P), P * P * C)  # (B, N, P*P*C)


def unpatchify(
    patches: torch.Tensor,
    patch_size: int,
    grid_size: int | tuple[int, int],
    channels: int,
) -> torch.Tensor:
    """Inverse of :func:`patchify`: put flattened patches back into images.

    Args:
        patches: ``(B, N, P*P*C)`` as returned by :func:`patchify`.
        patch_size: side ``P`` of the patches.
        grid_size: ``(gh, gw)`` patches per column and per row (an int for a square grid).
        channels: number of image channels ``C``.

    Returns:
        ``(B, C, gh*P, gw*P)`` images.
    """
    gh, gw = _pair(grid_size)
    P, C = patch_size, channels
    if patches.ndim != 3 or patches.shape[1] != gh * gw or patches.shape[2] != P * P * C:
        raise ValueError(
            f"expected patches shaped (B, {gh * gw}, {P * P * C}) for a {gh}x{gw} grid of "
            f"{P}x{P}x{C} patches, got {tuple(patches.shape)}"
        )
    B = patches.shape[0]
    x = patches.reshape(B, gh, gw, P, P, C)  # (B, gh, gw, p1, p2, C)
    x = x.permute(0, 5, 1, 3, 2, 4)  # (B, C, gh, p1, gw, p2)
    return x.reshape(B, C, gh * P, gw * P)


def patchify_einops(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """:func:`patchify` as one einops pattern (same output, shape as documentation)."""
    _check_images(images, patch_size)
    return rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (p1 p2 c)", p1=patch_size, p2=patch_size)


def unpatchify_einops(
    patches: torch.Tensor,
    patch_size: int,
    grid_size: int | tuple[int, int],
    channels: int,
) -> torch.Tensor:
    """:func:`unpatchify` as one einops pattern."""
    gh, gw = _pair(grid_size)
    return rearrange(
        patches,
        "b (gh gw) (p1 p2 c) -> b c (gh p1) (gw p2)",
        gh=gh,
        gw=gw,
        p1=patch_size,
        p2=patch_size,
        c=channels,
    )


def grid_size_for(
    img_size: int | tuple[int, int], patch_size: int, pad: bool = False
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Patch grid and padding needed to cut an image into ``patch_size`` patches.

    Args:
        img_size: ``H`` (square) or ``(H, W)``.
        patch_size: side ``P`` of the patches.
        pad: if False, a size that doesn't divide raises; if True, the image is
            padded at the bottom and on the right up to the next multiple of ``P``.

    Returns:
        ``((gh, gw), (pad_h, pad_w))``: the grid and the rows/columns of padding.
    """
    height, width = _pair(img_size)
    if patch_size < 1:
        raise ValueError(f"patch_size must be a positive integer, got {patch_size}")
    pad_h = (-height) % patch_size
    pad_w = (-width) % patch_size
    if (pad_h or pad_w) and not pad:
        raise ValueError(
            f"image size {height}x{width} is not divisible by patch_size={patch_size} "
            f"(remainders {height % patch_size} and {width % patch_size}); pass pad=True to pad "
            f"to {height + pad_h}x{width + pad_w}, or resize/crop the image to a multiple of {patch_size}"
        )
    return (math.ceil(height / patch_size), math.ceil(width / patch_size)), (pad_h, pad_w)


class PatchEmbedding(nn.Module):
    """Split an image into patches and project each patch to ``embed_dim``.

    Two interchangeable implementations:

    * ``method="linear"``: :func:`patchify` followed by ``nn.Linear(P*P*C, D)``;
    * ``method="conv"``: ``nn.Conv2d(C, D, kernel_size=P, stride=P)``, the same linear
      map applied at every patch position.

    With the weights copied across (:meth:`copy_weights_from`) both give the same output.

    Args:
        img_size: expected input size, ``H`` or ``(H, W)``.
        patch_size: side ``P`` of the square patches.
        in_chans: input channels ``C``.
        embed_dim: output dimension ``D`` of each patch token.
        method: ``"conv"`` or ``"linear"``.
        pad: pad sizes that are not multiples of ``P`` (bottom and right, with zeros)
            instead of raising. The amount is kept in :attr:`padding` and logged.

    Shapes:
        input ``(B, C, H, W)`` → output ``(B, N, D)`` with ``N = gh * gw``.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int],
        patch_size: int,
        in_chans: int = 3,
        embed_dim: int = 768,
        method: str = "conv",
        pad: bool = False,
    ) -> None:
        super().__init__()
        if method not in ("conv", "linear"):
            raise ValueError(f'method must be "conv" or "linear", got {method!r}')
        self.img_size = _pair(img_size)
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.method = method
        self.grid_size, self.padding = grid_size_for(self.img_size, patch_size, pad=pad)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        if any(self.padding):
            logger.info(
                "PatchEmbedding pads %dx%d images with %d rows (bottom) and %d columns (right) "
                "to %dx%d, a %dx%d grid of %d patches",
                *self.img_size,
                *self.padding,
                self.img_size[0] + self.padding[0],
                self.img_size[1] + self.padding[1],
                *self.grid_size,
                self.num_patches,
            )
        if method == "conv":
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        else:
            self.proj = nn.Linear(patch_size * patch_size * in_chans, embed_dim)

    def extra_repr(self) -> str:
        return (
            f"img_size={self.img_size}, patch_size={self.patch_size}, method={self.method!r}, "
            f"grid_size={self.grid_size}, padding={self.padding}"
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embed a batch of images.

        Args:
            images: ``(B, C, H, W)`` matching ``in_chans`` and ``img_size``.

        Returns:
            ``(B, N, D)`` patch tokens in raster order.
        """
        if (
            images.ndim != 4
            or images.shape[1] != self.in_chans
            or tuple(images.shape[2:]) != self.img_size
        ):
            raise ValueError(
                f"expected images shaped (B, {self.in_chans}, {self.img_size[0]}, "
                f"{self.img_size[1]}), got {tuple(images.shape)}; build the PatchEmbedding "
                f"with the image size you feed it"
            )
        pad_h, pad_w = self.padding
        if pad_h or pad_w:
            images = F.pad(images, (0, pad_w, 0, pad_h))  # (left, right, top, bottom)
        if self.method == "conv":
            x = self.proj(images)  # (B, D, gh, gw)
            return x.flatten(2).transpose(1, 2)  # (B, N, D)
        return self.proj(patchify(images, self.patch_size))  # (B, N, D)

    @torch.no_grad()
    def copy_weights_from(self, other: PatchEmbedding) -> PatchEmbedding:
        """Load ``other``'s projection into this module, converting conv ↔ linear.

        A conv kernel ``(D, C, P, P)`` and a linear weight ``(D, P*P*C)`` describe the
        same map; only the order of the input axes differs (``c, p1, p2`` versus
        ``p1, p2, c``).

        Returns:
            ``self``, for chaining.
        """
        if (other.patch_size, other.in_chans, other.embed_dim) != (
            self.patch_size,
            self.in_chans,
            self.embed_dim,
        ):
            raise ValueError(
                f"both embeddings need the same patch_size, in_chans and embed_dim, got "
                f"{(other.patch_size, other.in_chans, other.embed_dim)} and "
                f"{(self.patch_size, self.in_chans, self.embed_dim)}"
            )
        weight = other.proj.weight
        if other.method == "conv" and self.method == "linear":
            weight = weight.permute(0, 2, 3, 1).reshape(self.embed_dim, -1)  # (D, p1*p2*C)
        elif other.method == "linear" and self.method == "conv":
            P, C = self.patch_size, self.in_chans
            # (D, C, p1, p2)
            weight = weight.reshape(self.embed_dim, P, P, C).permute(0, 3, 1, 2)
        self.proj.weight.copy_(weight)
        self.proj.bias.copy_(other.proj.bias)
        return self
