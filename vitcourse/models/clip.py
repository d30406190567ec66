"""CLIP (Radford et al. 2021): an image encoder and a text encoder trained to agree.

Two towers map an image and a text to one vector each in a shared ``embed_dim``-dim
space (the *joint space*); a batch of ``n`` matching image–text pairs is trained so
that each image is most similar to its own caption among the ``n`` captions, and each
caption to its own image among the ``n`` images. The paper's pseudocode::

    I_f = image_encoder(I)                 # [n, d_i]
    T_f = text_encoder(T)                  # [n, d_t]
    I_e = l2_normalize(I_f @ W_i, axis=1)  # [n, d_e]
    T_e = l2_normalize(T_f @ W_t, axis=1)  # [n, d_e]
    logits = I_e @ T_e.T * exp(t)          # [n, n]
    labels = arange(n)
    loss_i = cross_entropy(logits, labels, axis=0)
    loss_t = cross_entropy(logits, labels, axis=1)
    loss = (loss_i + loss_t) / 2

Here the image encoder is our :class:`~vitcourse.models.ViT` (with CLIP's two
details: a LayerNorm *before* the blocks and a patch projection without bias), the
text encoder is chapter 4's causal :class:`~vitcourse.models.GPT` without an output
layer, read at the end-of-text token (the last token of every caption, which under the
causal mask has seen all the others). ``W_i`` and ``W_t`` are
:attr:`CLIP.visual_proj` and :attr:`CLIP.text_proj`; ``t`` is :attr:`CLIP.logit_scale`,
the learned log of the inverse temperature, started at ``log(1 / 0.07)`` and clamped
so that ``exp(t)`` never exceeds 100 (the paper's clipping).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import activation_layer
from .gpt import GPT, GPTConfig
from .registry import register_model
from .vit import ViT, ViTConfig

__all__ = ["CLIP", "CLIPConfig", "CLIPVisionTower", "clip_loss"]


@dataclass
class CLIPConfig:
    """Hyper-parameters of a :class:`CLIP`, with ViT-B/32's values as defaults.

    The fields are flat (as in OpenAI's code) so that a preset can be overridden field
    by field (``create_model("clip_vit_base_patch32", text_depth=2)``).

    Args:
        embed_dim: dimension ``d_e`` of the joint space (the projections' output).
        img_size: input side ``H = W`` of the image encoder.
        patch_size: side ``P`` of the patches.
        in_chans: input channels.
        vision_width: token dimension of the image encoder.
        vision_depth: blocks of the image encoder.
        vision_heads: attention heads of the image encoder.
        vocab_size: text tokens (49 408 for CLIP's byte-pair encoding).
        context_length: most text tokens per caption (77).
        text_width: token dimension of the text encoder.
        text_depth: blocks of the text encoder.
        text_heads: attention heads of the text encoder.
        mlp_ratio: hidden size of every MLP over its tower's width.
        activation: every MLP's activation (``"quick_gelu"``: OpenAI's CLIP).
        norm_eps: every LayerNorm's ε.
        eot_token_id: the end-of-text token, where the text encoder is read (its first
            occurrence); ``None`` reads the position of the largest id, as OpenAI's code
            does (its end-of-text token is the last id of the vocabulary).
        logit_scale_init: initial ``t`` (``log(1 / 0.07)``).
        logit_scale_max: ``t`` is clamped to at most this (``log(100)``).
        dropout: dropout everywhere (0 in CLIP).
    """

    embed_dim: int = 512
    img_size: int = 224
    patch_size: int = 32
    in_chans: int = 3
    vision_width: int = 768
    vision_depth: int = 12
    vision_heads: int = 12
    vocab_size: int = 49408
    context_length: int = 77
    text_width: int = 512
    text_depth: int = 12
    text_heads: int = 8
    mlp_ratio: float = 4.0
    activation: str = "quick_gelu"
    norm_eps: float = 1e-5
    eot_token_id: int | None = 49407
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float = math.log(100)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.eot_token_id is not None and not 0 <= self.eot_token_id < self.vocab_size:
            raise ValueError(
                f"eot_token_id={self.eot_token_id} is outside the vocabulary "
                f"(0 … {self.vocab_size - 1}); pass the id of the end-of-text token, "
                "or None to read the position of the largest id"
            )
        self.vision_config()  # validates sizes, with ViTConfig's messages
        self.text_config()

    def vision_config(self) -> ViTConfig:
        """The image encoder's :class:`~vitcourse.models.ViTConfig` (no head)."""
        return ViTConfig(
            img_size=self.img_size,
            patch_size=self.patch_size,
            in_chans=self.in_chans,
            num_classes=0,
            embed_dim=self.vision_width,
            depth=self.vision_depth,
            num_heads=self.vision_heads,
            mlp_ratio=self.mlp_ratio,
            dropout=self.dropout,
            attn_dropout=self.dropout,
            norm_eps=self.norm_eps,
        )

    def text_config(self) -> GPTConfig:
        """The text encoder's :class:`~vitcourse.models.GPTConfig` (no output layer)."""
        return GPTConfig(
            vocab_size=self.vocab_size,
            max_seq_len=self.context_length,
            embed_dim=self.text_width,
            depth=self.text_depth,
            num_heads=self.text_heads,
            mlp_ratio=self.mlp_ratio,
            dropout=self.dropout,
            attn_dropout=self.dropout,
            activation=self.activation,
            norm_eps=self.norm_eps,
            lm_head="none",
        )


def clip_loss(
    image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """CLIP's symmetric contrastive loss, the paper's pseudocode line for line.

    Pair ``i`` is image ``i`` with text ``i``; every other pairing in the batch is a
    negative.

    Args:
        image_features: ``(n, d_e)`` projected, not yet normalised (``I_f @ W_i``).
        text_features: ``(n, d_e)`` projected, not yet normalised (``T_f @ W_t``).
        logit_scale: ``t``, the log of the inverse temperature (a scalar tensor).

    Returns:
        ``(CE over rows + CE over columns) / 2``, a scalar.
    """
    if image_features.shape != text_features.shape or image_features.ndim != 2:
        raise ValueError(
            "expected image and text features of one shape (n, d_e), one row per "
            f"pair; got {tuple(image_features.shape)} and {tuple(text_features.shape)}"
        )
    I_e = F.normalize(image_features, dim=1)  # (n, d_e)
    T_e = F.normalize(text_features, dim=1)  # (n, d_e)
    logits = I_e @ T_e.T * logit_scale.exp()  # (n, n): row = image, column = text
    labels = torch.arange(logits.shape[0], device=logits.device)  # (n,)
    loss_i = F.cross_entropy(logits, labels)  # each image picks its text
    loss_t = F.cross_entropy(logits.T, labels)  # each text picks its image
    return (loss_i + loss_t) / 2


class CLIPVisionTower(ViT):
    """Our ViT with CLIP's two changes: a LayerNorm on the input tokens
    (``pre_norm``) and a patch projection without bias; its MLPs use ``activation``.

    Args:
        config: a :class:`~vitcourse.models.ViTConfig` with ``num_classes=0``.
        activation: a key of :data:`vitcourse.layers.ACTIVATIONS`.

    Shapes:
        images ``(B, C, H, W)`` → the normalised ``[CLS]`` token ``(B, D)``.
    """

    def __init__(self, config: ViTConfig, activation: str = "quick_gelu") -> None:
        super().__init__(config)
        proj = self.patch_embed.proj
        self.patch_embed.proj = nn.Conv2d(
            proj.in_channels,
            proj.out_channels,
            kernel_size=proj.kernel_size,
            stride=proj.stride,
            bias=False,
        )
        nn.init.trunc_normal_(self.patch_embed.proj.weight, std=0.02)
        self.pre_norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        act = activation_layer(activation)
        for block in self.blocks:
            block.mlp.act = act()

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Prefix and patch tokens with positions, then CLIP's ``pre_norm``.

        Args:
            images: ``(B, C, H, W)``.

        Returns:
            ``(B, 1 + N, D)``.
        """
        return self.pre_norm(super().embed(images))


class CLIP(nn.Module):
    """Contrastive language–image pre-training: two encoders and a learned temperature.

    Args:
        config: a :class:`CLIPConfig`.

    Submodules: ``visual`` (:class:`CLIPVisionTower`), ``text``
    (:class:`~vitcourse.models.GPT` with ``lm_head="none"``), ``visual_proj`` and
    ``text_proj`` (linear, no bias), ``logit_scale`` (a scalar parameter, ``t``).

    Shapes:
        images ``(B, C, H, W)`` and token ids ``(B', L)`` with ``L ≤ context_length``
        → logits ``(B, B')``: scaled cosine similarity of every image with every text.
    """

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.config = c = config
        self.visual = CLIPVisionTower(c.vision_config(), c.activation)
        self.text = GPT(c.text_config())
        self.visual_proj = nn.Linear(c.vision_width, c.embed_dim, bias=False)  # W_i
        self.text_proj = nn.Linear(c.text_width, c.embed_dim, bias=False)  # W_t
        nn.init.normal_(self.visual_proj.weight, std=c.vision_width**-0.5)
        nn.init.normal_(self.text_proj.weight, std=c.text_width**-0.5)
        self.logit_scale = nn.Parameter(torch.tensor(float(c.logit_scale_init)))  # t

    def eot_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Where each caption's end-of-text token is (the text encoder's read-out).

        Args:
            input_ids: ``(B, L)``.

        Returns:
            ``(B,)`` positions.

        Raises:
            ValueError: a row without the end-of-text token.
        """
        eot = self.config.eot_token_id
        if eot is None:
            return input_ids.argmax(dim=-1)
        found = input_ids == eot  # (B, L)
        if not found.any(dim=-1).all():
            rows = (~found.any(dim=-1)).nonzero().flatten().tolist()
            raise ValueError(
                f"rows {rows[:8]} of input_ids have no end-of-text token (id {eot}); "
                "CLIP reads each caption at that token: tokenise with the CLIP "
                "tokenizer (it appends it) or append it yourself"
            )
        return found.int().argmax(dim=-1)

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Image features in the joint space, ``I_f @ W_i`` (not normalised).

        Args:
            pixel_values: ``(B, C, H, W)``, normalised as the model was trained.

        Returns:
            ``(B, embed_dim)``.
        """
        return self.visual_proj(self.visual(pixel_values))

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Text features in the joint space, ``T_f @ W_t`` (not normalised).

        Args:
            input_ids: ``(B, L)`` token ids, each row with its end-of-text token
                (anything after it, padding, is ignored: the mask is causal).

        Returns:
            ``(B, embed_dim)``.
        """
        h = self.text.features(input_ids, last_index=self.eot_positions(input_ids))
        return self.text_proj(h)

    def clamped_logit_scale(self) -> torch.Tensor:
        """``t`` clamped to at most ``logit_scale_max`` (``exp(t) ≤ 100``)."""
        return self.logit_scale.clamp(max=self.config.logit_scale_max)

    @property
    def temperature(self) -> float:
        """The softmax temperature ``τ = exp(-t)`` (0.07 at the start)."""
        return float(self.clamped_logit_scale().detach().neg().exp())

    def similarity(
        self, image_features: torch.Tensor, text_features: torch.Tensor
    ) -> torch.Tensor:
        """Scaled cosine similarities ``exp(t) · I_e T_eᵀ``.

        Args:
            image_features: ``(B, embed_dim)`` from :meth:`encode_image`.
            text_features: ``(B', embed_dim)`` from :meth:`encode_text`.

        Returns:
            ``(B, B')`` logits, a row per image.
        """
        I_e = F.normalize(image_features, dim=-1)
        T_e = F.normalize(text_features, dim=-1)
        return I_e @ T_e.T * self.clamped_logit_scale().exp()

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor
    ) -> torch.Tensor:
        """Logits of every image against every text, ``(B, B')``."""
        return self.similarity(
            self.encode_image(pixel_values), self.encode_text(input_ids)
        )

    def loss(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """:func:`clip_loss` of a batch of matching pairs, with the clamped ``t``."""
        return clip_loss(
            self.encode_image(pixel_values),
            self.encode_text(input_ids),
            self.clamped_logit_scale(),
        )


# -- presets -----------------------------------------------------------------------
# OpenAI's released sizes (Table 19/20 of Radford et al. 2021; Hugging Face's
# openai/clip-vit-* configs): the text encoder is 12 blocks of 512 (B) or 768 (L).


@register_model(CLIP)
def clip_vit_base_patch32() -> CLIPConfig:
    """CLIP ViT-B/32: image ViT-B/32 (768, 12 blocks), text 512 × 12, joint 512."""
    return CLIPConfig()


@register_model(CLIP)
def clip_vit_base_patch16() -> CLIPConfig:
    """CLIP ViT-B/16: as ViT-B/32 with 16×16 patches (196 image tokens)."""
    return CLIPConfig(patch_size=16)


@register_model(CLIP)
def clip_vit_large_patch14() -> CLIPConfig:
    """CLIP ViT-L/14: image ViT-L/14 (1024, 24 blocks), text 768 × 12, joint 768."""
    return CLIPConfig(
        embed_dim=768,
        patch_size=14,
        vision_width=1024,
        vision_depth=24,
        vision_heads=16,
        text_width=768,
        text_heads=12,
    )


@register_model(CLIP)
def clip_vit_large_patch14_336() -> CLIPConfig:
    """CLIP ViT-L/14@336px: ViT-L/14 fine-tuned at 336×336 (576 image tokens)."""
    return CLIPConfig(
        embed_dim=768,
        img_size=336,
        patch_size=14,
        vision_width=1024,
        vision_depth=24,
        vision_heads=16,
        text_width=768,
        text_heads=12,
    )


# A size for a CPU in minutes (our name; no paper defines it): the mini-CLIP of
# chapter 5, trained on the generated world's Spanish captions
# (:mod:`vitcourse.clip_world`, a 44-word vocabulary).


@register_model(CLIP)
def clip_world_tiny() -> CLIPConfig:
    """A mini-CLIP for 32×32 world images: ViT 64 × 3 blocks on 8×8 patches (16
    image tokens), text 64 × 2 blocks over 44 words (24 positions), joint space 64."""
    return CLIPConfig(
        embed_dim=64,
        img_size=32,
        patch_size=8,
        vision_width=64,
        vision_depth=3,
        vision_heads=4,
        vocab_size=44,
        context_length=24,
        text_width=64,
        text_depth=2,
        text_heads=4,
        mlp_ratio=2.0,
        eot_token_id=43,
    )
