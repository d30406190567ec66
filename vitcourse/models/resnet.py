"""A small ResNet (He et al., 2016): the CNN baseline, DeiT teacher and hybrid stem.

The CNN's inductive biases, in code: every layer is a 3×3 convolution (locality), the
same kernel slides over the whole image (translation equivariance), and stages halve
the resolution while doubling the channels (a hierarchy of scales). Residual blocks
``y = ReLU(x + F(x))`` keep deep stacks trainable, the same idea as the transformer's
residual stream.

Sizes here are for small images (CIFAR's 32×32, the 8×8 digits): a 3×3 stem with stride
1 keeps the little resolution there is; ``stem_stride=2`` halves it first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .registry import register_model

__all__ = ["BasicBlock", "ResNet", "ResNetConfig"]


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and a residual connection.

    ``y = ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x))``; the shortcut is a strided
    1×1 convolution when the block changes resolution or width, the identity otherwise.

    Args:
        in_chans: input channels.
        out_chans: output channels.
        stride: 2 to halve the resolution.

    Shapes:
        ``(B, in_chans, H, W)`` → ``(B, out_chans, H/stride, W/stride)``.
    """

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, out_chans, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chans)
        self.conv2 = nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chans)
        self.act = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_chans != out_chans:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chans, out_chans, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chans)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        return self.act(x + shortcut)


@dataclass
class ResNetConfig:
    """Hyper-parameters of a :class:`ResNet`.

    Args:
        img_size: the image side the model is meant for. A CNN accepts any size (one of
            its inductive biases), so this only checks that the stages don't shrink
            the image below one pixel; it keeps ``create_model(name, img_size=...)``
            uniform across the package's models.
        in_chans: input channels.
        num_classes: classes of the head (0: identity, the model returns pooled features).
        widths: channels of each stage.
        depths: residual blocks per stage.
        stem_stride: stride of the first 3×3 convolution.
    """

    img_size: int = 32
    in_chans: int = 3
    num_classes: int = 10
    widths: tuple[int, ...] = (32, 64, 128)
    depths: tuple[int, ...] = (2, 2, 2)
    stem_stride: int = 1

    def __post_init__(self) -> None:
        self.widths, self.depths = tuple(self.widths), tuple(self.depths)
        if len(self.widths) != len(self.depths) or not self.widths:
            raise ValueError(
                f"widths and depths need one entry per stage, got {len(self.widths)} and {len(self.depths)}"
            )
        if self.img_size < self.stride:
            raise ValueError(
                f"img_size={self.img_size} is smaller than the network's total stride {self.stride}; "
                f"use fewer stages or stem_stride=1"
            )

    @property
    def stride(self) -> int:
        """Input pixels per output pixel of the last stage."""
        return self.stem_stride * 2 ** (len(self.widths) - 1)


class ResNet(nn.Module):
    """A ResNet: 3×3 stem, stages of :class:`BasicBlock`, global average pooling, linear head.

    Args:
        config: the hyper-parameters (:class:`ResNetConfig`).

    Shapes:
        images ``(B, C, H, W)`` → logits ``(B, num_classes)``;
        :meth:`forward_features` gives the last map ``(B, widths[-1], H/stride, W/stride)``.
    """

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        width = config.widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_chans, width, 3, stride=config.stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.ModuleList()
        in_chans = width
        for i, (out_chans, depth) in enumerate(zip(config.widths, config.depths)):
            blocks = [BasicBlock(in_chans, out_chans, stride=1 if i == 0 else 2)]
            blocks += [BasicBlock(out_chans, out_chans) for _ in range(depth - 1)]
            self.stages.append(nn.Sequential(*blocks))
            in_chans = out_chans
        self.num_features = in_chans
        self.head = nn.Linear(in_chans, config.num_classes) if config.num_classes > 0 else nn.Identity()
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """He initialisation for convolutions; the last BN of each block starts at zero, so
        every residual block starts as the identity (Goyal et al., 2017)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for module in self.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    @property
    def stride(self) -> int:
        """Input pixels per pixel of the last feature map."""
        return self.config.stride

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map ``(B, widths[-1], H/stride, W/stride)``."""
        if images.ndim != 4 or images.shape[1] != self.config.in_chans:
            raise ValueError(
                f"expected images shaped (B, {self.config.in_chans}, H, W), got {tuple(images.shape)}"
            )
        x = self.stem(images)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pooling and the linear head: ``(B, C, h, w)`` → ``(B, num_classes)``."""
        return self.head(features.mean(dim=(2, 3)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Classify a batch ``(B, C, H, W)`` → logits ``(B, num_classes)``."""
        return self.forward_head(self.forward_features(images))


# -- presets (our sizes) ------------------------------------------------------------


@register_model(ResNet)
def resnet_tiny() -> ResNetConfig:
    """A ResNet for 32×32 images: widths (32, 64, 128), two blocks per stage (about 0.7 M parameters)."""
    return ResNetConfig(img_size=32, widths=(32, 64, 128), depths=(2, 2, 2))


@register_model(ResNet)
def resnet_pico() -> ResNetConfig:
    """A ResNet for 8×8 grey digits: widths (16, 32), one block per stage."""
    return ResNetConfig(img_size=8, in_chans=1, widths=(16, 32), depths=(1, 1))
