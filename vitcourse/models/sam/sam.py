"""Segment Anything (Kirillov et al., 2023): an image encoder run once, a light prompt decoder run per click.

::

    embedding = image_encoder(image)                       (B, C, g, g), once per image
    sparse, dense = prompt_encoder(points, boxes, mask)    tokens and a dense map
    masks, iou = mask_decoder(embedding, positions, sparse, dense)

The encoder is the expensive part (a ViT on 1024×1024 pixels); the prompt encoder and
the decoder are small, so a new click costs only them: :meth:`Sam.encode_image` once,
then :meth:`Sam.predict` per prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_model
from .image_encoder import SamImageEncoder
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder

__all__ = ["Sam", "SamConfig"]


@dataclass
class SamConfig:
    """Hyper-parameters of a :class:`Sam`, with SAM ViT-B's values as defaults.

    Args:
        img_size: side of the square input (1024).
        patch_size: ViT patch side (16); the embedding is ``img_size / patch_size`` wide.
        in_chans: input channels.
        embed_dim: the ViT's token dimension.
        depth: the ViT's blocks.
        num_heads: the ViT's heads.
        mlp_ratio: the ViT's MLP hidden size over ``embed_dim``.
        window_size: side of the ViT's attention windows (0: global everywhere).
        global_attn_indexes: ViT blocks with global attention.
        use_abs_pos: learned absolute positions in the ViT.
        use_rel_pos: decomposed relative positions in the ViT.
        qkv_bias: bias in the ViT's Q, K, V.
        norm_eps: LayerNorm epsilon (1e-6 everywhere but the decoder's last norm).
        prompt_dim: channels ``C`` of the image embedding and the prompt tokens (256).
        mask_in_chans: hidden channels of the mask-prompt downscaling (16).
        decoder_depth: two-way blocks (2).
        decoder_heads: their heads (8).
        decoder_mlp_dim: their MLP hidden size (2048).
        attention_downsample_rate: width divisor of the cross-attentions (2).
        num_multimask_outputs: ambiguity masks (3).
        iou_head_depth: layers of the IoU MLP (3).
        iou_head_hidden_dim: its hidden size (256).
    """

    img_size: int = 1024
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    window_size: int = 14
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    use_abs_pos: bool = True
    use_rel_pos: bool = True
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    prompt_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256

    def __post_init__(self) -> None:
        self.global_attn_indexes = tuple(int(i) for i in self.global_attn_indexes)
        if self.img_size % self.patch_size:
            raise ValueError(
                f"img_size={self.img_size} is not a multiple of patch_size={self.patch_size}; "
                f"use img_size={self.img_size - self.img_size % self.patch_size}"
            )
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if self.prompt_dim % 8:
            raise ValueError(f"prompt_dim must be a multiple of 8 (the decoder upscales to C/8), got {self.prompt_dim}")
        bad = [i for i in self.global_attn_indexes if not 0 <= i < self.depth]
        if bad:
            raise ValueError(f"global_attn_indexes {bad} are not blocks of a depth-{self.depth} encoder")

    @property
    def embedding_size(self) -> int:
        """Side ``g`` of the image embedding."""
        return self.img_size // self.patch_size


class Sam(nn.Module):
    """The Segment Anything model: image encoder, prompt encoder, mask decoder.

    Args:
        config: a :class:`SamConfig`.

    Shapes:
        images ``(B, C, S, S)`` (normalised) and prompts in pixels of ``S × S`` →
        mask logits ``(B, P, K, 4g, 4g)`` (``4g = S/4`` for ``P = 16``) and predicted
        IoUs ``(B, P, K)``; ``P`` prompts per image, ``K`` = 3 or 1 masks per prompt.
    """

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        self.config = c = config
        self.image_encoder = SamImageEncoder(
            img_size=c.img_size,
            patch_size=c.patch_size,
            in_chans=c.in_chans,
            embed_dim=c.embed_dim,
            depth=c.depth,
            num_heads=c.num_heads,
            mlp_ratio=c.mlp_ratio,
            out_chans=c.prompt_dim,
            qkv_bias=c.qkv_bias,
            norm_eps=c.norm_eps,
            use_abs_pos=c.use_abs_pos,
            use_rel_pos=c.use_rel_pos,
            window_size=c.window_size,
            global_attn_indexes=c.global_attn_indexes,
        )
        self.prompt_encoder = PromptEncoder(
            c.prompt_dim, c.embedding_size, c.img_size, c.mask_in_chans, norm_eps=c.norm_eps
        )
        self.mask_decoder = MaskDecoder(
            c.prompt_dim,
            c.decoder_depth,
            c.decoder_heads,
            c.decoder_mlp_dim,
            c.attention_downsample_rate,
            c.num_multimask_outputs,
            c.iou_head_depth,
            c.iou_head_hidden_dim,
            norm_eps=c.norm_eps,
        )

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """The image embedding ``(B, C, g, g)``, computed once per image."""
        return self.image_encoder(images)

    def predict(
        self,
        image_embedding: torch.Tensor,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
        multimask_output: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks for prompts on an already encoded image (the cheap part).

        Args:
            image_embedding: ``(B, C, g, g)`` from :meth:`encode_image`.
            points: ``(B, P, N, 2)`` pixels ``(x, y)``.
            labels: ``(B, P, N)``: 1 foreground, 0 background.
            boxes: ``(B, P, 4)`` pixels ``(x0, y0, x1, y1)``.
            masks: ``(B, 1, 4g, 4g)`` logits of an earlier prediction.
            multimask_output: three masks per prompt (True) or one.

        Returns:
            ``(mask_logits (B, P, K, 4g, 4g), predicted_iou (B, P, K))``.
        """
        if points is None and boxes is None and masks is None:
            raise ValueError("give at least one prompt: points (with labels), boxes or masks")
        if points is not None and boxes is not None and points.shape[:2] != boxes.shape[:2]:
            raise ValueError(
                f"points and boxes must come in the same (B, P): got {tuple(points.shape[:2])} and "
                f"{tuple(boxes.shape[:2])}; give one box per point prompt"
            )
        sparse, dense = self.prompt_encoder(points, labels, boxes, masks)
        if dense.shape[0] != image_embedding.shape[0]:
            raise ValueError(
                f"prompts for {dense.shape[0]} images but {image_embedding.shape[0]} image embeddings"
            )
        return self.mask_decoder(
            image_embedding, self.prompt_encoder.dense_positions(), sparse, dense, multimask_output
        )

    def forward(
        self,
        images: torch.Tensor,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
        multimask_output: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`encode_image` then :meth:`predict`; see them for the arguments."""
        return self.predict(self.encode_image(images), points, labels, boxes, masks, multimask_output)

    def upscale(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """Low-resolution mask logits ``(..., 4g, 4g)`` bilinearly to the input size ``(..., S, S)``."""
        lead = mask_logits.shape[:-2]
        flat = mask_logits.reshape(-1, 1, *mask_logits.shape[-2:])
        size = self.config.img_size
        up = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
        return up.view(*lead, size, size)


# -- presets: the three released SAM image encoders (Kirillov et al., 2023) ------------


@register_model(Sam)
def sam_vit_base() -> SamConfig:
    """SAM ViT-B: D=768, 12 blocks, global attention in blocks 2, 5, 8, 11."""
    return SamConfig()


@register_model(Sam)
def sam_vit_large() -> SamConfig:
    """SAM ViT-L: D=1024, 24 blocks, 16 heads, global attention in blocks 5, 11, 17, 23."""
    return SamConfig(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23))


@register_model(Sam)
def sam_vit_huge() -> SamConfig:
    """SAM ViT-H: D=1280, 32 blocks, 16 heads, global attention in blocks 7, 15, 23, 31."""
    return SamConfig(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31))


@register_model(Sam)
def sam_mini() -> SamConfig:
    """A SAM for the generated world's 64×64 images, trained on a CPU (our size).

    8×8 patches give an 8×8 embedding and 32×32 mask logits (upscaled to 64×64).
    """
    return SamConfig(
        img_size=64,
        patch_size=8,
        embed_dim=64,
        depth=4,
        num_heads=4,
        mlp_ratio=2.0,
        window_size=4,
        global_attn_indexes=(1, 3),
        prompt_dim=64,
        mask_in_chans=8,
        decoder_heads=4,
        decoder_mlp_dim=128,
        iou_head_hidden_dim=64,
    )
