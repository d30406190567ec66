"""SAM's mask decoder: output tokens, the two-way transformer, upscaling, hypernetworks.

Learned output tokens go in front of the prompt tokens: one **IoU token** and
``1 + num_multimask_outputs`` **mask tokens**. After the two-way transformer,

* the image tokens are upscaled 4× by two transposed convolutions (to ``C/8``
  channels);
* each mask token goes through its own 3-layer MLP (a *hypernetwork*) to ``C/8``
  numbers, the weights of a linear classifier of every upscaled pixel: mask ``k`` is
  ``hyper_k · upscaled``, ``(4g, 4g)`` logits;
* the IoU token goes through an MLP to one predicted IoU per mask.

One click is ambiguous (the shirt or the person?): with ``multimask_output`` the
decoder returns the three masks of tokens 1-3 (trained so that the best of them fits),
ranked by predicted IoU; without it, the single mask of token 0 (trained for
unambiguous prompts: several points, a box).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d, StackedMLP
from .transformer import TwoWayTransformer

__all__ = ["MaskDecoder"]


class MaskDecoder(nn.Module):
    """Image embedding and prompt tokens to masks and predicted IoUs.

    Args:
        embed_dim: channels ``C`` (256).
        depth: two-way blocks (2).
        num_heads: attention heads (8).
        mlp_dim: MLP hidden size in the transformer (2048).
        downsample_rate: width divisor of the cross-attentions (2).
        num_multimask_outputs: masks for an ambiguous prompt (3).
        iou_head_depth: layers of the IoU MLP (3).
        iou_head_hidden_dim: its hidden size (256).
        norm_eps: LayerNorm epsilon in the transformer.

    Shapes:
        see :meth:`forward`.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        depth: int = 2,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        downsample_rate: int = 2,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if embed_dim % 8:
            raise ValueError(f"embed_dim must be a multiple of 8 (upscaling to C/4, C/8), got {embed_dim}")
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, embed_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, embed_dim)
        self.transformer = TwoWayTransformer(depth, embed_dim, num_heads, mlp_dim, downsample_rate, norm_eps)
        self.upscale_conv1 = nn.ConvTranspose2d(embed_dim, embed_dim // 4, kernel_size=2, stride=2)
        self.upscale_norm = LayerNorm2d(embed_dim // 4)  # 1e-6 whatever norm_eps is, as in SAM
        self.upscale_conv2 = nn.ConvTranspose2d(embed_dim // 4, embed_dim // 8, kernel_size=2, stride=2)
        self.hypernetworks = nn.ModuleList(
            StackedMLP(embed_dim, embed_dim, embed_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_head = StackedMLP(embed_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def forward(
        self,
        image_embedding: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor | None,
        dense: torch.Tensor,
        multimask_output: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict masks.

        Args:
            image_embedding: ``(B, C, g, g)`` from the image encoder.
            image_pe: ``(1, C, g, g)`` positions of its cells.
            sparse: prompt tokens ``(B, P, T, C)``, or None.
            dense: ``(B, C, g, g)`` from the prompt encoder.
            multimask_output: the three ambiguity masks (True) or the single one.

        Returns:
            ``(masks, iou)``: logits ``(B, P, K, 4g, 4g)`` and predicted IoUs
            ``(B, P, K)``, ``K = 3`` or 1.
        """
        masks, iou, _ = self.decode(image_embedding, image_pe, sparse, dense)
        keep = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, :, keep], iou[:, :, keep]

    def decode(
        self,
        image_embedding: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor | None,
        dense: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every mask token's mask, predicted IoU and output token (SAM 2 needs the tokens).

        Args: as :meth:`forward`.

        Returns:
            ``(masks, iou, mask_tokens)``: logits ``(B, P, M, 4g, 4g)``, predicted IoUs
            ``(B, P, M)`` and the mask tokens after the transformer ``(B, P, M, C)``,
            ``M = 1 + num_multimask_outputs`` (token 0: the single-mask output).
        """
        B, C, g, _ = image_embedding.shape
        P = 1 if sparse is None else sparse.shape[1]
        output = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)  # (1 + M, C)
        tokens = output.expand(B, P, -1, -1)
        if sparse is not None:
            tokens = torch.cat([tokens, sparse.to(output.dtype)], dim=2)  # (B, P, T, C)
        tokens = tokens.reshape(B * P, -1, C)
        image = (image_embedding + dense).repeat_interleave(P, dim=0)  # (B*P, C, g, g)
        pe = image_pe.expand(B * P, -1, -1, -1)
        tokens, image = self.transformer(image, pe, tokens)  # (B*P, T, C), (B*P, g², C)
        iou_token = tokens[:, 0]
        mask_tokens = tokens[:, 1 : 1 + self.num_mask_tokens]  # (B*P, M, C)
        image = image.transpose(1, 2).reshape(B * P, C, g, g)
        up = F.gelu(self.upscale_norm(self.upscale_conv1(image)))
        up = F.gelu(self.upscale_conv2(up))  # (B*P, C/8, 4g, 4g)
        hyper = torch.stack(
            [mlp(mask_tokens[:, i]) for i, mlp in enumerate(self.hypernetworks)], dim=1
        )  # (B*P, M, C/8)
        side = up.shape[-1]
        masks = (hyper @ up.flatten(2)).view(B, P, -1, side, side)  # (B, P, M, 4g, 4g)
        iou = self.iou_head(iou_token).view(B, P, -1)  # (B, P, M)
        return masks, iou, mask_tokens.view(B, P, self.num_mask_tokens, C)
