"""DETR's backbone: a CNN that turns the image into a small map of features.

DETR doesn't ask its transformer to look at pixels: a ResNet first reduces the
``3 × H₀ × W₀`` image to a ``C × H₀/s × W₀/s`` map (``C = 2048``, ``s = 32`` for
ResNet-50), whose cells become the encoder's tokens. Two bodies, one interface:

* :func:`torchvision_resnet`: the ImageNet ResNets in torchvision's layout (``conv1``,
  ``bn1``, ``layer1``…``layer4``), built from torchvision's own blocks, so that
  ``torchvision.models.resnet50``'s weights (and DETR's) load by name; ResNet-50 is
  ``block="bottleneck", depths=(3, 4, 6, 3)``;
* our small :class:`~vitcourse.models.ResNet` (3×3 stem, for 32–128 px images), so
  that a detector can start from the shipped ``resnet_shapes`` checkpoint.

As in DETR, the batch norms are **frozen**: their statistics and affine parameters
become constant buffers (``torchvision.ops.FrozenBatchNorm2d``). Detection batches
are small (2 images per GPU in DETR), too small to estimate batch statistics from.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops import FrozenBatchNorm2d

from ..resnet import ResNet, ResNetConfig

__all__ = ["Backbone", "TorchvisionResNet", "freeze_batch_norm", "torchvision_resnet"]

_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` inside ``module`` by a frozen copy (in place).

    Args:
        module: any network.

    Returns:
        ``module``, whose batch norms now hold their statistics and affine
        parameters as buffers (not trained, not counted as parameters).
    """
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            if child.weight.device.type != "meta":
                with torch.no_grad():
                    for key in ("weight", "bias", "running_mean", "running_var"):
                        getattr(frozen, key).copy_(getattr(child, key))
            setattr(module, name, frozen.to(child.weight.device))
        else:
            freeze_batch_norm(child)
    return module


class TorchvisionResNet(nn.Module):
    """The convolutional body of an ImageNet ResNet, in torchvision's layout, without its head.

    ``conv1`` (7×7, stride 2) → ``bn1`` → ReLU → 3×3 max pool (stride 2) → four stages
    ``layer1``…``layer4``, the last three halving the resolution: total stride 32.

    Args:
        block: ``"basic"`` (two 3×3 convolutions, ResNet-18/34) or ``"bottleneck"``
            (1×1 → 3×3 → 1×1, four times narrower inside, ResNet-50/101).
        depths: blocks per stage; ``(3, 4, 6, 3)`` with bottlenecks is ResNet-50.
        widths: output channels of each stage (torchvision: 64·2ⁱ, times 4 for
            bottlenecks).
        stem_width: channels of ``conv1``.
        in_chans: image channels.

    Shapes:
        ``(B, in_chans, H, W)`` → ``(B, widths[-1], H/32, W/32)`` (four stages; rounded up).
    """

    def __init__(
        self,
        block: str = "bottleneck",
        depths: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] | None = None,
        stem_width: int = 64,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {tuple(_BLOCKS)}, got {block!r}")
        kind = _BLOCKS[block]
        widths = tuple(widths or (64 * 2**i * kind.expansion for i in range(len(depths))))
        if len(widths) != len(depths) or any(w % kind.expansion for w in widths):
            raise ValueError(
                f"need one width per stage, each divisible by {kind.expansion} for "
                f"{block!r} blocks; got widths={widths}, depths={tuple(depths)}"
            )
        self.conv1 = nn.Conv2d(in_chans, stem_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_width = stem_width
        for i, (width, depth) in enumerate(zip(widths, depths)):
            stride = 1 if i == 0 else 2
            stage = [self._block(kind, in_width, width, stride)]
            stage += [self._block(kind, width, width, 1) for _ in range(depth - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            in_width = width
        self.num_stages = len(depths)
        self.num_features = in_width
        self.stride = 4 * 2 ** (len(depths) - 1)  # stem 2, pool 2, then 2 per stage after the first

    @staticmethod
    def _block(kind: type[nn.Module], in_width: int, width: int, stride: int) -> nn.Module:
        downsample = None
        if stride != 1 or in_width != width:
            downsample = nn.Sequential(
                nn.Conv2d(in_width, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width)
            )
        return kind(in_width, width // kind.expansion, stride=stride, downsample=downsample)

    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output (``layer1``…): strides 4, 8, 16, 32."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        maps = []
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
            maps.append(x)
        return maps

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """The last stage's map ``(B, widths[-1], H/32, W/32)``."""
        return self.forward_stages(images)[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward_features`."""
        return self.forward_features(images)


def torchvision_resnet(name: str = "resnet50", **overrides) -> TorchvisionResNet:
    """A torchvision ResNet body by name: ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"resnet101"``.

    Args:
        name: which ResNet.
        **overrides: :class:`TorchvisionResNet` arguments to change.

    Returns:
        The body, whose ``state_dict`` names and shapes are those of
        ``torchvision.models.<name>()`` without ``fc``.
    """
    presets = {
        "resnet18": ("basic", (2, 2, 2, 2)),
        "resnet34": ("basic", (3, 4, 6, 3)),
        "resnet50": ("bottleneck", (3, 4, 6, 3)),
        "resnet101": ("bottleneck", (3, 4, 23, 3)),
    }
    if name not in presets:
        raise ValueError(f"unknown torchvision ResNet {name!r}; choose one of {tuple(presets)}")
    block, depths = presets[name]
    return TorchvisionResNet(**{"block": block, "depths": depths, **overrides})


class Backbone(nn.Module):
    """A CNN body with frozen batch norms, returning its last map and which cells are image.

    Args:
        kind: ``"torchvision"`` (:class:`TorchvisionResNet`) or ``"vitcourse"`` (our
            :class:`~vitcourse.models.ResNet`, without head).
        options: the body's arguments: for ``"torchvision"`` those of
            :class:`TorchvisionResNet` (``block``, ``depths``, ``widths``,
            ``stem_width``), for ``"vitcourse"`` those of
            :class:`~vitcourse.models.ResNetConfig` (``widths``, ``depths``, ``stem_stride``).
        in_chans: image channels.
        frozen_bn: freeze the batch norms (DETR does).
        pool: average-pool the last map by this factor (1: no pooling); a cheap way
            to fewer, coarser tokens for a small backbone of stride 4.

    Shapes:
        images ``(B, in_chans, H, W)`` and optional ``pixel_mask`` ``(B, H, W)`` (True
        where the pixel is image, False where it is padding) →
        ``(features (B, C, h, w), valid (B, h, w))``.
    """

    def __init__(
        self, kind: str = "torchvision", options: dict | None = None, in_chans: int = 3,
        frozen_bn: bool = True, pool: int = 1,
    ) -> None:  # fmt: skip
        super().__init__()
        if pool < 1:
            raise ValueError(f"pool must be >= 1, got {pool}")
        options = dict(options or {})
        if kind == "torchvision":
            self.body = TorchvisionResNet(in_chans=in_chans, **options)
            self.stride = self.body.stride
        elif kind == "vitcourse":
            config = ResNetConfig(in_chans=in_chans, num_classes=0, **options)
            self.body = ResNet(config)
            self.stride = config.stride
        else:
            raise ValueError(f"kind must be 'torchvision' or 'vitcourse', got {kind!r}")
        self.kind, self.pool = kind, pool
        self.stride *= pool
        self.num_channels = self.body.num_features
        if frozen_bn:
            freeze_batch_norm(self.body)

    def forward(
        self, images: torch.Tensor, pixel_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The last feature map and its valid cells (see the class docstring)."""
        if images.ndim != 4:
            raise ValueError(f"expected images shaped (B, C, H, W), got {tuple(images.shape)}")
        features = self.body.forward_features(images)  # (B, C, h, w)
        if self.pool > 1:
            features = F.avg_pool2d(features, self.pool, ceil_mode=True)  # (B, C, h/p, w/p)
        if pixel_mask is None:
            B, _, h, w = features.shape
            valid = torch.ones(B, h, w, dtype=torch.bool, device=images.device)
        else:  # a cell is image if its nearest pixel is
            mask = pixel_mask[:, None].float()
            valid = F.interpolate(mask, size=features.shape[-2:])[:, 0].bool()
        return features, valid
