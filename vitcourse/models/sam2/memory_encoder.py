"""SAM 2's memory encoder: what the tracker remembers of a frame it has segmented.

After a frame is segmented, its **memory** is made from two things::

    mask   = sigmoid(mask_logits)                      (B, 1, 4g, 4g)
    m      = MaskDownsampler(mask)                     (B, C, g, g)   stride-2 convolutions
    x      = proj(frame_features) + m                  (B, C, g, g)   fused with the frame
    x      = Fuser(x)                                  (B, C, g, g)   a few conv blocks
    memory = out_proj(x)                               (B, C_mem, g, g)

The frame features are the image encoder's (not the memory-conditioned ones), so a
memory says "this is what the frame looked like, and this part of it was the object".
SAM 2 keeps memories narrow (``C_mem = 64`` against ``C = 256``): a video accumulates
many of them and the current frame attends to all.
"""

from __future__ import annotations

import torch
from torch import nn

from ..sam.common import LayerNorm2d

__all__ = ["FuserBlock", "MaskDownsampler", "MemoryEncoder"]


class MaskDownsampler(nn.Module):
    """A mask to the embedding's grid: stride-2 convolutions, each halving the side.

    Args:
        embed_dim: output channels ``C``.
        num_halvings: stride-2 convolutions (2: a ``4g`` mask to ``g``).
        hidden: channels of the first convolution (doubled at each next one).

    Shapes:
        ``(B, 1, 4g, 4g)`` → ``(B, C, g, g)``.
    """

    def __init__(self, embed_dim: int, num_halvings: int = 2, hidden: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for i in range(num_halvings):
            out = hidden * 2**i
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), LayerNorm2d(out), nn.GELU()]
            channels = out
        layers.append(nn.Conv2d(channels, embed_dim, kernel_size=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """Downsample a soft mask in ``[0, 1]``."""
        return self.layers(mask)


class FuserBlock(nn.Module):
    """A ConvNeXt block: depthwise 7×7 (here 3×3) conv, LayerNorm, pointwise MLP, residual.

    Args:
        embed_dim: channels ``C``.
        kernel_size: side of the depthwise convolution.

    Shapes:
        ``(B, C, H, W)`` → ``(B, C, H, W)``.
    """

    def __init__(self, embed_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(embed_dim, embed_dim, kernel_size, padding=kernel_size // 2, groups=embed_dim)
        self.norm = LayerNorm2d(embed_dim)
        self.pwconv1 = nn.Conv2d(embed_dim, 4 * embed_dim, kernel_size=1)
        self.pwconv2 = nn.Conv2d(4 * embed_dim, embed_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix each pixel with its neighbours, then its channels."""
        return x + self.pwconv2(nn.functional.gelu(self.pwconv1(self.norm(self.dwconv(x)))))


class MemoryEncoder(nn.Module):
    """Predicted mask + frame features → a memory.

    Args:
        embed_dim: channels ``C`` of the frame features.
        memory_dim: channels ``C_mem`` of a memory.
        num_fuser_blocks: :class:`FuserBlock` s after the sum.
        mask_halvings: stride-2 convolutions of the mask (the mask is ``2^n`` times the grid).

    Shapes:
        see :meth:`forward`.
    """

    def __init__(
        self, embed_dim: int, memory_dim: int, num_fuser_blocks: int = 2, mask_halvings: int = 2
    ) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownsampler(embed_dim, mask_halvings)
        self.feature_proj = nn.Conv2d(embed_dim, embed_dim, kernel_size=1)
        self.fuser = nn.Sequential(*(FuserBlock(embed_dim) for _ in range(num_fuser_blocks)))
        self.out_proj = nn.Conv2d(embed_dim, memory_dim, kernel_size=1)

    def forward(
        self, features: torch.Tensor, mask_logits: torch.Tensor
    ) -> torch.Tensor:
        """Encode one memory per frame.

        Args:
            features: ``(B, C, g, g)`` image-encoder features of the frames.
            mask_logits: ``(B, 1, 4g, 4g)`` the masks predicted for them.

        Returns:
            ``(B, C_mem, g, g)``.
        """
        mask = self.mask_downsampler(mask_logits.sigmoid())  # (B, C, g, g)
        if mask.shape[-2:] != features.shape[-2:]:
            raise ValueError(
                f"the mask downsampled to {tuple(mask.shape[-2:])} but the features "
                f"are {tuple(features.shape[-2:])}: give masks 2^mask_halvings times "
                f"the features' side"
            )
        x = self.feature_proj(features) + mask
        return self.out_proj(self.fuser(x))
