"""A vision-language model (VLM) in the LLaVA recipe, at toy size.

LLaVA (Liu et al. 2023) and its successors (Pixtral, …) read an image with a *frozen*
vision encoder, turn each of its output tokens into a token of the language model
with a small *projector* (LLaVA-1.5: two linear layers with a GELU), put those image
tokens in front of the text tokens and let a decoder-only language model continue::

    v = vision_encoder(image)            (B, M, D_v)   frozen
    e = projector(v)                     (B, M, D)     trained
    x = [e ; W_e(question)] + W_p        (B, M + L, D)
    answer = GPT(x) at the last question position

Here the vision encoder is the mini-CLIP's image tower (:class:`CLIPVisionTower`, all
``1 + N`` output tokens), the language model chapter 4's :class:`GPT`. With
``use_image=False`` the same model never sees the image: the text-only baseline that
shows how much the answers depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .clip import CLIPVisionTower
from .gpt import GPT, GPTConfig
from .registry import register_model
from .vit import ViTConfig

__all__ = ["VLM", "VLMConfig"]


@dataclass
class VLMConfig:
    """Hyper-parameters of a :class:`VLM` (flat, so presets can be overridden).

    Args:
        img_size, patch_size, vision_width, vision_depth, vision_heads, vision_mlp_ratio:
            the image tower (a :class:`~vitcourse.models.CLIPVisionTower`).
        vocab_size: the language model's tokens.
        max_seq_len: image tokens plus text tokens, at most.
        embed_dim, depth, num_heads, mlp_ratio: the language model (a
            :class:`~vitcourse.models.GPT`).
        use_image: False builds the text-only baseline (no tower, no projector).
    """

    img_size: int = 32
    patch_size: int = 8
    vision_width: int = 64
    vision_depth: int = 3
    vision_heads: int = 4
    vision_mlp_ratio: float = 2.0
    vocab_size: int = 45
    max_seq_len: int = 96
    embed_dim: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 2.0
    use_image: bool = True

    def vision_config(self) -> ViTConfig:
        """The image tower's config (CLIP's LayerNorm ε, no head)."""
        return ViTConfig(
            img_size=self.img_size,
            patch_size=self.patch_size,
            num_classes=0,
            embed_dim=self.vision_width,
            depth=self.vision_depth,
            num_heads=self.vision_heads,
            mlp_ratio=self.vision_mlp_ratio,
            norm_eps=1e-5,
        )

    def lm_config(self) -> GPTConfig:
        """The language model's config (no dropout)."""
        return GPTConfig(
            vocab_size=self.vocab_size,
            max_seq_len=self.max_seq_len,
            embed_dim=self.embed_dim,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            dropout=0.0,
            attn_dropout=0.0,
        )


class VLM(nn.Module):
    """Frozen image tower → projector → image tokens in front of a GPT's text tokens.

    Args:
        config: a :class:`VLMConfig`.

    Submodules: ``visual`` (frozen), ``projector`` (``Linear → GELU → Linear``), ``lm``
    (:class:`~vitcourse.models.GPT`); the first two only with ``use_image``.

    Shapes:
        images ``(B, 3, H, W)`` and token ids ``(B, L)`` → logits ``(B, L, V)`` for the
        text positions.
    """

    def __init__(self, config: VLMConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.use_image:
            self.visual = CLIPVisionTower(c.vision_config())
            self.visual.requires_grad_(False)
            self.projector = nn.Sequential(
                nn.Linear(c.vision_width, c.embed_dim),
                nn.GELU(),
                nn.Linear(c.embed_dim, c.embed_dim),
            )
        self.lm = GPT(c.lm_config())

    @property
    def num_image_tokens(self) -> int:
        """Tokens each image takes in the language model's context (``1 + N``)."""
        if not self.config.use_image:
            return 0
        return self.visual.num_prefix_tokens + self.visual.num_patches

    @torch.no_grad()
    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The frozen tower's output tokens ``(B, 1 + N, D_v)``."""
        return self.visual.forward_features(pixel_values)

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next-token logits at the text positions.

        Args:
            input_ids: ``(B, L)`` the text (question) tokens.
            pixel_values: ``(B, 3, H, W)``; or pass ``image_features`` (precomputed by
                :meth:`image_features`, the tower being frozen).

        Returns:
            ``(B, L, V)``.
        """
        lm = self.lm
        parts = []
        if self.config.use_image:
            if image_features is None:
                if pixel_values is None:
                    raise ValueError("this VLM reads an image: pass pixel_values")
                image_features = self.image_features(pixel_values)
            parts.append(self.projector(image_features))  # (B, M, D)
        parts.append(lm.tok_embed(input_ids))  # (B, L, D)
        x = torch.cat(parts, dim=1)
        if x.shape[1] > self.config.max_seq_len:
            raise ValueError(
                f"{x.shape[1]} tokens ({self.num_image_tokens} image + "
                f"{input_ids.shape[1]} text) exceed max_seq_len="
                f"{self.config.max_seq_len}"
            )
        x = lm.drop(x + lm.pos_embed(torch.arange(x.shape[1], device=x.device)))
        for block in lm.blocks:
            x = block(x)
        h = lm.norm(x[:, -input_ids.shape[1] :])  # (B, L, D)
        return lm.logits(h)


@register_model(VLM)
def vlm_world_tiny() -> VLMConfig:
    """The chapter 5 VLM: the mini-CLIP's image tower (64 × 3, 8×8 patches), a GPT of
    64 × 2 blocks over the world's question words."""
    return VLMConfig()
