"""A hybrid ViT: a CNN stem makes the tokens, a transformer relates them.

The ViT paper's "R50+ViT-B/16" feeds the transformer with the feature map of a
ResNet-50 instead of raw patches: each position of the map becomes one token. The
convolutions bring locality and translation equivariance to the first layers, where
ViT has to learn them from data, which helps most when data is scarce. Here the CNN
is the package's small :class:`~vitcourse.models.ResNet`.

``patch_size`` keeps its meaning: the side, in input pixels, of the image square one
token stands for. It must be a multiple of the CNN's stride; the remaining factor is the
patch size on the feature map (1 in the paper's hybrids).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .registry import register_model
from .resnet import ResNet, ResNetConfig
from .vit import ViT, ViTConfig

__all__ = ["HybridEmbedding", "HybridViT", "HybridViTConfig"]


@dataclass
class HybridViTConfig(ViTConfig):
    """:class:`~vitcourse.models.ViTConfig` plus the CNN stem's sizes.

    Args:
        backbone_widths: channels of the stem's ResNet stages.
        backbone_depths: residual blocks per stage.
        backbone_stem_stride: stride of the ResNet's first convolution.
        (the other fields as in :class:`~vitcourse.models.ViTConfig`; ``patch_size`` is
        in input pixels and must be a multiple of the stem's stride.)
    """

    backbone_widths: tuple[int, ...] = (64, 128, 256)
    backbone_depths: tuple[int, ...] = (2, 2, 2)
    backbone_stem_stride: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        stride = self.backbone_config().stride
        if self.patch_size % stride:
            raise ValueError(
                f"patch_size={self.patch_size} (in input pixels) must be a multiple of the CNN stem's "
                f"stride {stride}; use patch_size={stride} for one token per feature-map position"
            )

    def backbone_config(self) -> ResNetConfig:
        """The stem's :class:`~vitcourse.models.ResNetConfig` (no head)."""
        size = self.img_size if isinstance(self.img_size, int) else min(self.img_size)
        return ResNetConfig(
            img_size=size,
            in_chans=self.in_chans,
            num_classes=0,
            widths=self.backbone_widths,
            depths=self.backbone_depths,
            stem_stride=self.backbone_stem_stride,
        )


class HybridEmbedding(nn.Module):
    """CNN feature map → tokens: a ResNet, then a ``k × k`` stride-``k`` projection to ``D``.

    Args:
        config: a :class:`HybridViTConfig`.

    Shapes:
        images ``(B, C, H, W)`` → tokens ``(B, N, D)``, ``N = (H/patch_size) * (W/patch_size)``.
    """

    def __init__(self, config: HybridViTConfig) -> None:
        super().__init__()
        self.backbone = ResNet(config.backbone_config())
        k = config.patch_size // self.backbone.stride  # patch side on the feature map
        self.proj = nn.Conv2d(self.backbone.num_features, config.embed_dim, kernel_size=k, stride=k)
        height, width = (config.img_size, config.img_size) if isinstance(config.img_size, int) else config.img_size
        self.img_size = (height, width)
        self.in_chans = config.in_chans
        self.grid_size = (height // config.patch_size, width // config.patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embed a batch of images into ``(B, N, D)`` tokens in raster order."""
        if (
            images.ndim != 4
            or images.shape[1] != self.in_chans
            or tuple(images.shape[2:]) != self.img_size
        ):
            raise ValueError(
                f"expected images shaped (B, {self.in_chans}, {self.img_size[0]}, "
                f"{self.img_size[1]}), got {tuple(images.shape)}"
            )
        features = self.backbone.forward_features(images)  # (B, C', H/s, W/s)
        x = self.proj(features)  # (B, D, gh, gw)
        return x.flatten(2).transpose(1, 2)  # (B, N, D)


class HybridViT(ViT):
    """A ViT whose tokens come from a CNN (:class:`HybridEmbedding`) instead of linear patches.

    Everything after the embedding (``[CLS]``, positions, blocks, head) is :class:`ViT`'s.

    Args:
        config: a :class:`HybridViTConfig`.
    """

    def __init__(self, config: HybridViTConfig) -> None:
        super().__init__(config, patch_embed=HybridEmbedding(config))


# -- presets (our sizes) ------------------------------------------------------------


@register_model(HybridViT)
def vit_hybrid_micro_patch4_32() -> HybridViTConfig:
    """For 32×32 images: a two-stage ResNet (stride 4) gives an 8×8 map, 64 tokens as in
    ``vit_micro_patch4_32``; then 4 blocks with D=128, 4 heads."""
    return HybridViTConfig(
        img_size=32,
        patch_size=4,
        num_classes=10,
        embed_dim=128,
        depth=4,
        num_heads=4,
        mlp_ratio=2.0,
        backbone_widths=(32, 64),
        backbone_depths=(1, 1),
        backbone_stem_stride=2,
    )
