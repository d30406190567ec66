"""RT-DETR's efficient hybrid encoder (Zhao et al., 2024): attention on one scale, convolutions across scales.

A multi-scale DETR encoder lets every token of every scale attend to every other:
with a 640 px image and strides 8, 16, 32 that is 6 400 + 1 600 + 400 tokens, and
the cost grows with the square. RT-DETR's observation is that the fine scales carry
little the coarse one needs to *attend* to, so it decouples the two jobs:

* **AIFI** (attention-based intra-scale feature interaction): one transformer
  encoder layer on the coarsest map only, ``F₅ = Reshape(AIFI(Flatten(S₅)))``, where
  the tokens are few and semantically rich;
* **CCFF** (CNN-based cross-scale feature fusion): a top-down then bottom-up pass
  (an FPN and a PAN) of convolutional fusion blocks over ``{S₃, S₄, F₅}``.

:class:`HybridEncoder` builds both at any size from our layers (the AIFI layer is
DETR's encoder layer, :class:`~vitcourse.models.detr.DetrEncoderLayer`).
``attn_levels=(2,)`` is RT-DETR; ``attn_levels=(0, 1, 2)`` puts an AIFI layer on
every scale, the costlier design RT-DETR compares against (its variant D), and
:func:`encoder_latency` measures the two side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import sincos_2d_encoding
from ..measure import time_call
from .detr.transformer import DetrEncoderLayer

__all__ = [
    "AIFI",
    "CCFF",
    "CSPRepLayer",
    "ConvNormAct",
    "HybridEncoder",
    "HybridEncoderConfig",
    "RepVggBlock",
    "backbone_maps",
    "encoder_latency",
]


class ConvNormAct(nn.Module):
    """Convolution, batch norm, SiLU (``act=False``: no activation)."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 1, stride: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, out_chans, kernel_size, stride, kernel_size // 2, bias=False)
        self.norm = nn.BatchNorm2d(out_chans)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` → ``(B, out_chans, H/stride, W/stride)``."""
        return self.act(self.norm(self.conv(x)))


class RepVggBlock(nn.Module):
    """A 3×3 and a 1×1 branch, summed (RepVGG: at deployment the two fold into one 3×3)."""

    def __init__(self, chans: int) -> None:
        super().__init__()
        self.conv3 = ConvNormAct(chans, chans, 3, act=False)
        self.conv1 = ConvNormAct(chans, chans, 1, act=False)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same shape in and out."""
        return self.act(self.conv3(x) + self.conv1(x))


class CSPRepLayer(nn.Module):
    """CCFF's fusion block: two 1×1 paths from the concatenated maps, one through RepVGG blocks, summed.

    Args:
        in_chans: channels of the concatenation (``2 D``).
        out_chans: ``D``.
        num_blocks: RepVGG blocks on the first path (3 in RT-DETR).
    """

    def __init__(self, in_chans: int, out_chans: int, num_blocks: int = 3) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_chans, out_chans)
        self.conv2 = ConvNormAct(in_chans, out_chans)
        self.blocks = nn.Sequential(*[RepVggBlock(out_chans) for _ in range(num_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` → ``(B, out_chans, H, W)``."""
        return self.blocks(self.conv1(x)) + self.conv2(x)


class AIFI(nn.Module):
    """Transformer encoder layers over one feature map, with a fixed 2-D sin-cos position code.

    Args:
        dim: channels ``D``; num_heads, mlp_dim, num_layers: the encoder's.

    Shapes:
        ``(B, D, H, W)`` → ``(B, D, H, W)``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, num_layers: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DetrEncoderLayer(dim, num_heads, mlp_dim, dropout=0.0, act_layer=nn.GELU) for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend within the map: every cell to every cell."""
        B, D, H, W = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, H·W, D): Flatten(S5)
        pos = sincos_2d_encoding(H, W, D).to(x)  # (H·W, D)
        for layer in self.layers:
            tokens = layer(tokens, pos)
        return tokens.transpose(1, 2).reshape(B, D, H, W)  # Reshape(AIFI(Q, K, V))


class CCFF(nn.Module):
    """Cross-scale fusion: top-down (coarse into fine), then bottom-up (fine into coarse).

    Args:
        dim: channels ``D`` of every level.
        num_levels: maps in, finest first (3: S3, S4, S5).
        num_blocks: RepVGG blocks per fusion.

    Shapes:
        a list of maps ``(B, D, Hᵢ, Wᵢ)``, each half the size of the one before →
        a list of the same shapes.
    """

    def __init__(self, dim: int, num_levels: int = 3, num_blocks: int = 3) -> None:
        super().__init__()
        n = num_levels - 1
        self.lateral = nn.ModuleList(ConvNormAct(dim, dim) for _ in range(n))
        self.top_down = nn.ModuleList(CSPRepLayer(2 * dim, dim, num_blocks) for _ in range(n))
        self.downsample = nn.ModuleList(ConvNormAct(dim, dim, 3, stride=2) for _ in range(n))
        self.bottom_up = nn.ModuleList(CSPRepLayer(2 * dim, dim, num_blocks) for _ in range(n))

    def forward(self, maps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Fuse (see the class docstring)."""
        inner = [maps[-1]]  # coarsest first
        for i, (lateral, fuse) in enumerate(zip(self.lateral, self.top_down)):
            inner[-1] = lateral(inner[-1])
            up = F.interpolate(inner[-1], scale_factor=2.0, mode="nearest")
            inner.append(fuse(torch.cat([up, maps[-2 - i]], dim=1)))
        inner.reverse()  # finest first
        outs = [inner[0]]
        for i, (down, fuse) in enumerate(zip(self.downsample, self.bottom_up)):
            outs.append(fuse(torch.cat([down(outs[-1]), inner[i + 1]], dim=1)))
        return outs


@dataclass(frozen=True)
class HybridEncoderConfig:
    """Sizes of a :class:`HybridEncoder`.

    Args:
        in_channels: backbone channels of S3, S4, S5 (ResNet-50: 512, 1024, 2048).
        dim: encoder width ``D`` (256).
        num_heads, mlp_dim, num_layers: the AIFI transformer's (8, 1024, 1).
        attn_levels: which levels get an AIFI layer: ``(2,)`` is RT-DETR (S5 only).
        num_blocks: RepVGG blocks per CCFF fusion (3).
    """

    in_channels: tuple[int, ...] = (512, 1024, 2048)
    dim: int = 256
    num_heads: int = 8
    mlp_dim: int = 1024
    num_layers: int = 1
    attn_levels: tuple[int, ...] = (2,)
    num_blocks: int = 3


class HybridEncoder(nn.Module):
    """RT-DETR's encoder: 1×1 projections to ``D``, AIFI on ``attn_levels``, then CCFF.

    Args:
        config: :class:`HybridEncoderConfig`.

    Shapes:
        backbone maps ``[(B, C₃, H/8, W/8), (B, C₄, H/16, W/16), (B, C₅, H/32, W/32)]`` →
        the same grids with ``D`` channels each.
    """

    def __init__(self, config: HybridEncoderConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.input_proj = nn.ModuleList(ConvNormAct(ch, c.dim, act=False) for ch in c.in_channels)
        self.aifi = nn.ModuleDict(
            {str(level): AIFI(c.dim, c.num_heads, c.mlp_dim, c.num_layers) for level in c.attn_levels}
        )
        self.ccff = CCFF(c.dim, len(c.in_channels), c.num_blocks)

    def forward(self, maps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Encode the backbone's maps (see the class docstring)."""
        if len(maps) != len(self.input_proj):
            raise ValueError(
                f"expected {len(self.input_proj)} backbone maps (S3, S4, S5), got "
                f"{len(maps)}"
            )
        x = [proj(m) for proj, m in zip(self.input_proj, maps)]
        for level, aifi in self.aifi.items():
            x[int(level)] = aifi(x[int(level)])  # F5 = Reshape(AIFI(Flatten(S5)))
        return self.ccff(x)  # O = CCFF({S3, S4, F5})


def backbone_maps(config: HybridEncoderConfig, image_size: int, batch_size: int = 1, seed: int = 0) -> list[torch.Tensor]:
    """Random stand-ins for the backbone's S3, S4, S5 of an ``image_size`` image (strides 8, 16, 32)."""
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch_size, ch, image_size // s, image_size // s, generator=g)
        for ch, s in zip(config.in_channels, (8, 16, 32))
    ]


def encoder_latency(
    config: HybridEncoderConfig, image_size: int, batch_size: int = 1, repeats: int = 5
) -> dict[str, float]:
    """Time RT-DETR's encoder (AIFI on S5) against AIFI on every scale, side by side.

    Args:
        config: sizes; its ``attn_levels`` is replaced by ``(2,)`` and ``(0, 1, 2)``.
        image_size: the image side the maps stand for.
        batch_size: images per call.
        repeats: timed calls of each (medians).

    Returns:
        ``{"tokens_s5": …, "tokens_all": …, "s5_seconds": …, "all_seconds": …,
        "s5_cpu_seconds": …, "all_cpu_seconds": …, "cut": 1 − s5/all}`` (the cut from
        CPU seconds, which other programs running disturb less).
    """
    from dataclasses import replace

    maps = backbone_maps(config, image_size, batch_size)
    out = {"tokens_s5": maps[-1].shape[-1] ** 2, "tokens_all": sum(m.shape[-1] ** 2 for m in maps)}
    for name, levels in (("s5", (2,)), ("all", (0, 1, 2))):
        torch.manual_seed(0)
        encoder = HybridEncoder(replace(config, attn_levels=levels)).eval()
        wall, cpu = time_call(lambda e=encoder: e(maps), repeats=repeats)
        out[f"{name}_seconds"], out[f"{name}_cpu_seconds"] = wall, cpu
    out["cut"] = 1 - out["s5_cpu_seconds"] / out["all_cpu_seconds"]
    return out
