"""SAM's prompt encoder: points and boxes become tokens, a mask becomes a dense map.

* **Positions** by random Fourier features (Tancik et al., 2020): a point ``p`` in
  ``[0, 1]²`` goes to ``[sin(2π G (2p - 1)), cos(2π G (2p - 1))]`` with ``G`` a fixed
  ``2 × F`` Gaussian matrix, ``2F`` numbers that vary smoothly and at many frequencies.
  The same encoding gives every cell of the image embedding its position
  (:meth:`PromptEncoder.dense_positions`), so a prompt and the pixel it points at are
  comparable in attention.
* **Type embeddings**, learned and added: a foreground point, a background point, a
  box's top-left corner, its bottom-right corner; a padding point ("not a point") gets
  its own embedding instead of a position.
* **A mask prompt** (a previous low-resolution prediction, ``4×`` the embedding's side)
  is downscaled by two stride-2 convolutions and projected to the embedding's channels,
  then added to the image embedding; without one a learned "no mask" vector is added.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import LayerNorm2d

__all__ = ["PromptEncoder", "RandomFourierEncoding"]

#: Point labels: background, foreground, padding ("not a point", replaced by its own
#: embedding) and ignored (a zero token, Hugging Face's batch padding).
BACKGROUND, FOREGROUND, NOT_A_POINT, IGNORED = 0, 1, -1, -10


class RandomFourierEncoding(nn.Module):
    """``[sin(2π G (2p - 1)), cos(2π G (2p - 1))]`` for coordinates ``p`` in ``[0, 1]``.

    Args:
        num_feats: ``F``, columns of the Gaussian matrix; the encoding has ``2F`` numbers.
        scale: standard deviation of ``G``'s entries (higher: finer detail).

    Shapes:
        ``(..., 2)`` as ``(x, y)`` → ``(..., 2F)``.
    """

    def __init__(self, num_feats: int, scale: float = 1.0) -> None:
        super().__init__()
        # A parameter (as in Hugging Face's SamModel) that training doesn't move.
        self.gaussian = nn.Parameter(scale * torch.randn(2, num_feats), requires_grad=False)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Encode normalised ``(x, y)`` coordinates."""
        projected = (2 * coords.to(self.gaussian.dtype) - 1) @ self.gaussian  # (..., F)
        projected = 2 * math.pi * projected
        return torch.cat([projected.sin(), projected.cos()], dim=-1)  # (..., 2F)


class PromptEncoder(nn.Module):
    """Points, boxes and masks to sparse tokens and a dense map.

    Args:
        embed_dim: channels ``C`` of the image embedding and of the prompt tokens.
        embedding_size: side ``g`` of the image embedding.
        input_size: side of the input image, in pixels (prompts are given in its pixels).
        mask_in_chans: hidden channels of the mask downscaling.
        norm_eps: LayerNorm epsilon of the mask downscaling.

    Shapes:
        see :meth:`forward`.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        embedding_size: int = 64,
        input_size: int = 1024,
        mask_in_chans: int = 16,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even (sines and cosines), got {embed_dim}")
        self.embed_dim = embed_dim
        self.embedding_size = embedding_size
        self.input_size = input_size
        self.pe_layer = RandomFourierEncoding(embed_dim // 2)
        # 0: background point, 1: foreground point, 2: box top-left, 3: box bottom-right
        self.point_embed = nn.Embedding(4, embed_dim)
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        quarter = mask_in_chans // 4
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, quarter, kernel_size=2, stride=2),
            LayerNorm2d(quarter, eps=norm_eps),
            nn.GELU(),
            nn.Conv2d(quarter, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans, eps=norm_eps),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )

    @property
    def mask_input_size(self) -> int:
        """Side of a mask prompt: ``4 g``."""
        return 4 * self.embedding_size

    def dense_positions(self) -> torch.Tensor:
        """The positional encoding of every cell of the image embedding: ``(1, C, g, g)``."""
        g = self.embedding_size
        centres = (torch.arange(g, device=self.pe_layer.gaussian.device, dtype=torch.float32) + 0.5) / g
        y, x = torch.meshgrid(centres, centres, indexing="ij")
        pe = self.pe_layer(torch.stack([x, y], dim=-1))  # (g, g, C)
        return pe.permute(2, 0, 1).unsqueeze(0)

    def _encode_pixels(self, coords: torch.Tensor) -> torch.Tensor:
        """Pixel coordinates (of the input image) to encodings; +0.5 is the pixel's centre."""
        return self.pe_layer((coords + 0.5) / self.input_size)

    def embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """Point tokens: position plus the label's embedding.

        Args:
            points: ``(B, P, N, 2)`` as ``(x, y)`` pixels of the input image.
            labels: ``(B, P, N)``: 1 foreground, 0 background, -1 padding, -10 ignored.
            pad: append one padding point (when no box follows).

        Returns:
            ``(B, P, N (+1), C)``.
        """
        if pad:
            points = torch.cat([points, points.new_zeros(*points.shape[:2], 1, 2)], dim=2)
            labels = torch.cat([labels, labels.new_full((*labels.shape[:2], 1), NOT_A_POINT)], dim=2)
        tokens = self._encode_pixels(points)  # (B, P, N, C)
        labels = labels[..., None]
        tokens = torch.where(labels == NOT_A_POINT, self.not_a_point_embed.weight, tokens)
        tokens = torch.where(labels == IGNORED, torch.zeros_like(tokens), tokens)
        tokens = tokens + (labels == BACKGROUND) * self.point_embed.weight[0]
        return tokens + (labels == FOREGROUND) * self.point_embed.weight[1]

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """Box tokens: its two corners, each with its own corner embedding.

        Args:
            boxes: ``(B, P, 4)`` as ``(x0, y0, x1, y1)`` pixels.

        Returns:
            ``(B, P, 2, C)``.
        """
        corners = self._encode_pixels(boxes.reshape(*boxes.shape[:2], 2, 2))  # (B, P, 2, C)
        return corners + self.point_embed.weight[2:4]

    def forward(
        self,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Encode the prompts of a batch.

        Args:
            points: ``(B, P, N, 2)`` pixels ``(x, y)``: ``P`` prompts per image (each gives
                its own masks), ``N`` points per prompt.
            labels: ``(B, P, N)``, required with ``points``.
            boxes: ``(B, P, 4)`` pixels ``(x0, y0, x1, y1)``, one per prompt.
            masks: ``(B, 1, 4g, 4g)`` mask logits of an earlier prediction.

        Returns:
            ``(sparse, dense)``: tokens ``(B, P, T, C)`` (None without points or boxes)
            and the map ``(B, C, g, g)`` added to the image embedding.
        """
        sparse = None
        batch = 1
        if points is not None:
            if labels is None:
                raise ValueError("points need labels (B, P, N): 1 foreground, 0 background")
            if points.ndim != 4 or points.shape[-1] != 2 or labels.shape != points.shape[:-1]:
                raise ValueError(
                    f"expected points (B, P, N, 2) and labels (B, P, N), got {tuple(points.shape)} "
                    f"and {tuple(labels.shape)}"
                )
            batch = points.shape[0]
            sparse = self.embed_points(points, labels, pad=boxes is None)
        if boxes is not None:
            if boxes.ndim != 3 or boxes.shape[-1] != 4:
                raise ValueError(f"expected boxes (B, P, 4), got {tuple(boxes.shape)}")
            batch = boxes.shape[0]
            box_tokens = self.embed_boxes(boxes)
            sparse = box_tokens if sparse is None else torch.cat([sparse, box_tokens], dim=2)
        if masks is not None:
            dense = self.mask_downscaling(masks)  # (B, C, g, g)
        else:
            g = self.embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, g, g)
        return sparse, dense
