"""The Vision Transformer (ViT, Dosovitskiy et al., 2021), built from :mod:`vitcourse.layers`.

An image becomes a sequence: cut it into ``P×P`` patches, project each patch to ``D``
numbers (:class:`~vitcourse.layers.PatchEmbedding`), put a learned ``[CLS]`` token in
front, add a learned position to every token, and run a stack of pre-norm encoder
blocks (:class:`~vitcourse.layers.EncoderBlock`). The final ``[CLS]`` token (or the mean
of the patch tokens) goes through a LayerNorm and a linear head::

    x_0 = [x_cls; x_1 E; …; x_N E] + E_pos        (B, 1 + N, D)
    x_l = x_{l-1} + MSA(LN(x_{l-1}))
    x_l = x_l + MLP(LN(x_l))                      l = 1 … depth
    y   = head(LN(x_depth)[:, 0])                 (B, num_classes)

Submodules carry timm's names (``patch_embed.proj``, ``cls_token``, ``blocks.{i}.attn.qkv``,
``norm``, ``head``…), so timm's weights map onto ours by renaming one key
(:func:`state_dict_from_timm`). Other models use the methods (:meth:`ViT.embed`,
:meth:`ViT.patch_tokens`, :meth:`ViT.encode`, :meth:`ViT.forward_visible`, …),
never the attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import (
    EncoderBlock,
    LearnedPositionalEmbedding,
    PatchEmbedding,
    drop_path_schedule,
    sincos_2d_encoding,
)
from .registry import register_model

__all__ = ["ViT", "ViTConfig", "state_dict_from_timm", "state_dict_to_timm"]


@dataclass
class ViTConfig:
    """Hyper-parameters of a :class:`ViT`, with ViT-B/16's values as defaults.

    Args:
        img_size: input side ``H = W`` (or ``(H, W)``); a multiple of ``patch_size``.
        patch_size: side ``P`` of the square patches (16 in ViT-B/16).
        in_chans: input channels ``C``.
        num_classes: classes of the head; 0 replaces the head by the identity
            (the model then returns the pooled ``D``-dimensional features).
        embed_dim: token dimension ``D``.
        depth: number of encoder blocks.
        num_heads: attention heads ``h``; ``embed_dim`` must be divisible by it.
        mlp_ratio: hidden size of the MLP over ``D``.
        qkv_bias: bias in the Q, K, V projections.
        dropout: dropout after the position embedding, inside the MLP and on each
            residual branch.
        attn_dropout: dropout on the attention weights.
        drop_path: stochastic-depth rate of the last block; block ``i`` gets
            ``drop_path * i / (depth - 1)`` (the usual linear schedule).
        pool: ``"cls"`` (the ``[CLS]`` token) or ``"mean"`` (average of the patch tokens).
        norm_eps: epsilon of every LayerNorm: 1e-6 in timm and the original JAX code,
            1e-12 in Hugging Face's ``ViTConfig`` (``layer_norm_eps``). A converted model
            keeps its source's value, so it computes the same numbers.
        pos_embed: ``"learned"`` (the ViT paper) or ``"sincos"``: a fixed 2-D sin-cos
            table (:func:`~vitcourse.layers.sincos_2d_encoding`, zeros for the prefix
            tokens) that training leaves alone, as in MAE's encoder.
    """

    img_size: int | tuple[int, int] = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    dropout: float = 0.0
    attn_dropout: float = 0.0
    drop_path: float = 0.0
    pool: str = "cls"
    norm_eps: float = 1e-6
    pos_embed: str = "learned"

    def __post_init__(self) -> None:
        if self.pool not in ("cls", "mean"):
            raise ValueError(f'pool must be "cls" or "mean", got {self.pool!r}')
        if self.pos_embed not in ("learned", "sincos"):
            raise ValueError(f'pos_embed must be "learned" or "sincos", got {self.pos_embed!r}')
        if self.embed_dim % self.num_heads:
            divisors = [h for h in range(1, min(self.embed_dim, 32) + 1) if self.embed_dim % h == 0]
            raise ValueError(
                f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}; "
                f"every head gets embed_dim // num_heads dimensions: pick num_heads in {divisors}"
            )
        for side in (self.img_size,) if isinstance(self.img_size, int) else self.img_size:
            if side % self.patch_size:
                raise ValueError(
                    f"img_size={self.img_size} is not a multiple of patch_size={self.patch_size}: the patches "
                    f"must tile the image exactly; use img_size={side - side % self.patch_size} or "
                    f"{side - side % self.patch_size + self.patch_size}, or a patch_size dividing {side}"
                )
        if self.depth < 1:
            raise ValueError(f"depth must be at least 1, got {self.depth}")


class ViT(nn.Module):
    """Vision Transformer classifier.

    Args:
        config: the hyper-parameters (:class:`ViTConfig`).
        patch_embed: optional module replacing the patch embedding (a hybrid's CNN
            stem, for instance). It maps ``(B, C, H, W)`` to ``(B, N, D)`` and has the
            attributes ``num_patches`` and ``grid_size``.

    Shapes:
        images ``(B, C, H, W)`` → logits ``(B, num_classes)``; with
        ``return_attention`` also a list of ``depth`` tensors ``(B, h, T, T)``,
        ``T = num_prefix_tokens + num_patches``.
    """

    #: tokens in front of the patch tokens ([CLS]; DeiT adds a distillation token)
    num_prefix_tokens = 1

    def __init__(self, config: ViTConfig, patch_embed: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        D = config.embed_dim
        if patch_embed is None:
            patch_embed = PatchEmbedding(config.img_size, config.patch_size, config.in_chans, D)
        self.patch_embed = patch_embed
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = LearnedPositionalEmbedding(self.num_prefix_tokens + self.num_patches, D)
        self.pos_drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            EncoderBlock(
                D,
                config.num_heads,
                mlp_ratio=config.mlp_ratio,
                qkv_bias=config.qkv_bias,
                dropout=config.dropout,
                attn_dropout=config.attn_dropout,
                drop_path=rate,
                norm_eps=config.norm_eps,
            )
            for rate in drop_path_schedule(config.drop_path, config.depth)
        )
        self.norm = nn.LayerNorm(D, eps=config.norm_eps)
        self.head = nn.Linear(D, config.num_classes) if config.num_classes > 0 else nn.Identity()
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """timm's initialisation: truncated normal (std 0.02) for the linear layers and
        the positions, zero biases, a near-zero ``[CLS]`` token. A ``"sincos"`` table is
        filled with its fixed values and frozen."""
        if self.config.pos_embed == "sincos":
            table = sincos_2d_encoding(*self.grid_size, self.embed_dim)  # (N, D)
            self.pos_embed.weight.zero_()
            self.pos_embed.weight[0, self.num_prefix_tokens :] = table
            self.pos_embed.weight.requires_grad_(False)
        else:
            nn.init.trunc_normal_(self.pos_embed.weight, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    # -- sizes other models and chapters ask for --------------------------------------

    @property
    def embed_dim(self) -> int:
        """Token dimension ``D``."""
        return self.config.embed_dim

    @property
    def num_patches(self) -> int:
        """Number of patch tokens ``N``."""
        return self.patch_embed.num_patches

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patches per column and per row ``(gh, gw)``."""
        return tuple(self.patch_embed.grid_size)

    @property
    def patch_size(self) -> int:
        """Side ``P`` of a patch, in input pixels."""
        return self.config.patch_size

    # -- the forward pass, in pieces -------------------------------------------------

    def patch_tokens(
        self,
        images: torch.Tensor,
        mask: torch.Tensor | None = None,
        mask_token: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Embed the patches and add their positions (no prefix tokens).

        Args:
            images: ``(B, C, H, W)``.
            mask: optional ``(B, N)`` bool, True where a patch is hidden; its embedding
                is replaced by ``mask_token`` before the position is added (the
                encoder "with [M]" of MAE's ablation, BEiT's and SimMIM's input).
            mask_token: ``(D,)`` or ``(1, 1, D)``, needed with ``mask``.

        Returns:
            ``(B, N, D)`` patch tokens in raster order.
        """
        x = self.patch_embed(images)  # (B, N, D)
        if mask is not None:
            if mask_token is None:
                raise ValueError("patch_tokens(mask=...) needs the mask_token for hidden patches")
            token = mask_token.reshape(1, 1, -1).to(x.dtype)  # (1, 1, D)
            x = torch.where(mask.unsqueeze(-1), token, x)  # (B, N, D)
        return x + self.pos_embed.weight[:, self.num_prefix_tokens :]

    def prefix_tokens(self, batch_size: int) -> torch.Tensor:
        """The ``[CLS]`` token (plus any other prefix token) with its position.

        Returns:
            ``(B, num_prefix_tokens, D)``.
        """
        cls = self.cls_token + self.pos_embed.weight[:, :1]  # (1, 1, D)
        return cls.expand(batch_size, -1, -1)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's input sequence: prefix tokens, then patch tokens, with positions.

        Args:
            images: ``(B, C, H, W)``.

        Returns:
            ``(B, T, D)`` with ``T = num_prefix_tokens + N``.
        """
        patches = self.patch_tokens(images)  # (B, N, D)
        # (B, T, D)
        tokens = torch.cat([self.prefix_tokens(patches.shape[0]), patches], dim=1)
        return self.pos_drop(tokens)

    def encode(
        self, tokens: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the encoder blocks and the final LayerNorm on any token sequence.

        MAE's encoder calls this on the visible tokens only.

        Args:
            tokens: ``(B, L, D)``.
            return_attention: also return each block's attention weights.

        Returns:
            ``(B, L, D)``, or ``((B, L, D), [(B, h, L, L)] * depth)``.
        """
        attentions = []
        x = tokens
        for block in self.blocks:
            if return_attention:
                x, weights = block(x, return_attention=True)
                attentions.append(weights)
            else:
                x = block(x)
        x = self.norm(x)
        return (x, attentions) if return_attention else x

    def forward_visible(self, images: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Encode only some of the patches: MAE's encoder, blind to the hidden ones.

        Each kept patch carries the position of its place in the full grid, so the
        encoder knows where the few tokens it gets come from.

        Args:
            images: ``(B, C, H, W)``.
            keep: ``(B, L)`` int64 indices (into the ``N`` patches, raster order) of the
                visible patches, per image.

        Returns:
            ``(B, num_prefix_tokens + L, D)``: the encoded prefix token(s), then the
            visible patches in the order of ``keep``, after the final LayerNorm.
        """
        patches = self.patch_tokens(images)  # (B, N, D)
        if keep.ndim != 2 or keep.shape[0] != patches.shape[0]:
            raise ValueError(
                f"keep must be (B, L) patch indices for B={patches.shape[0]} images, "
                f"got {tuple(keep.shape)}"
            )
        index = keep.unsqueeze(-1).expand(-1, -1, patches.shape[-1])  # (B, L, D)
        visible = torch.gather(patches, 1, index)  # (B, L, D)
        prefix = self.prefix_tokens(patches.shape[0])  # (B, 1, D)
        tokens = torch.cat([prefix, visible], dim=1)  # (B, 1 + L, D)
        return self.encode(self.pos_drop(tokens))

    def forward_features(
        self, images: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Images to normalised output tokens ``(B, T, D)`` (and attention weights, if asked)."""
        return self.encode(self.embed(images), return_attention=return_attention)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """One vector per image: the ``[CLS]`` token or the mean of the patch tokens.

        Args:
            features: ``(B, T, D)`` from :meth:`forward_features`.

        Returns:
            ``(B, D)``.
        """
        if self.config.pool == "mean":
            return features[:, self.num_prefix_tokens :].mean(dim=1)
        return features[:, 0]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Pool the output tokens and classify: ``(B, T, D)`` → ``(B, num_classes)``."""
        return self.head(self.pool(features))

    def forward(
        self, images: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Classify a batch of images.

        Args:
            images: ``(B, C, H, W)`` with the ``in_chans`` and ``img_size`` of the config.
            return_attention: also return every block's attention weights.

        Returns:
            logits ``(B, num_classes)``, or ``(logits, [(B, h, T, T)] * depth)``.
        """
        if return_attention:
            features, attentions = self.forward_features(images, return_attention=True)
            return self.forward_head(features), attentions
        return self.forward_head(self.forward_features(images))


# -- moving weights to and from timm -------------------------------------------------

# Our names equal timm's except the position table, which lives in a
# LearnedPositionalEmbedding module here and is a bare parameter in timm.
_RENAMES_FROM_TIMM = {"pos_embed": "pos_embed.weight"}


def state_dict_from_timm(timm_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a timm ``VisionTransformer`` (or DeiT) state dict to this package's names.

    Args:
        timm_state: ``timm_model.state_dict()`` of a ViT with a class token,
            ``global_pool="token"`` and no ``fc_norm`` (the ``vit_*``/``deit_*`` presets).

    Returns:
        A state dict for :meth:`ViT.load_state_dict` (strict).
    """
    return {_RENAMES_FROM_TIMM.get(key, key): value for key, value in timm_state.items()}


def state_dict_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`state_dict_from_timm`."""
    back = {ours: theirs for theirs, ours in _RENAMES_FROM_TIMM.items()}
    return {back.get(key, key): value for key, value in state.items()}


# -- presets ------------------------------------------------------------------------
# The paper's sizes (Table 1 of Dosovitskiy et al.; Ti and S from DeiT/AugReg).


@register_model(ViT)
def vit_tiny_patch16_224() -> ViTConfig:
    """ViT-Ti/16: D=192, 12 blocks, 3 heads (5.7 M parameters)."""
    return ViTConfig(patch_size=16, embed_dim=192, depth=12, num_heads=3)


@register_model(ViT)
def vit_small_patch16_224() -> ViTConfig:
    """ViT-S/16: D=384, 12 blocks, 6 heads (22.1 M parameters)."""
    return ViTConfig(patch_size=16, embed_dim=384, depth=12, num_heads=6)


@register_model(ViT)
def vit_base_patch16_224() -> ViTConfig:
    """ViT-B/16: D=768, 12 blocks, 12 heads (86.6 M parameters)."""
    return ViTConfig(patch_size=16, embed_dim=768, depth=12, num_heads=12)


@register_model(ViT)
def vit_base_patch32_224() -> ViTConfig:
    """ViT-B/32: ViT-B with 32×32 patches, 49 tokens instead of 196 (88.2 M parameters)."""
    return ViTConfig(patch_size=32, embed_dim=768, depth=12, num_heads=12)


@register_model(ViT)
def vit_large_patch16_224() -> ViTConfig:
    """ViT-L/16: D=1024, 24 blocks, 16 heads (304.3 M parameters)."""
    return ViTConfig(patch_size=16, embed_dim=1024, depth=24, num_heads=16)


@register_model(ViT)
def vit_huge_patch14_224() -> ViTConfig:
    """ViT-H/14: D=1280, 32 blocks, 16 heads (632.0 M parameters with 1000 classes)."""
    return ViTConfig(patch_size=14, embed_dim=1280, depth=32, num_heads=16)


# Sizes for a CPU in seconds to minutes (our names; no paper defines them).


@register_model(ViT)
def vit_micro_patch4_32() -> ViTConfig:
    """A ViT for 32×32 images (CIFAR-10): 4×4 patches → 64 tokens, D=128, 6 blocks, 4 heads."""
    return ViTConfig(
        img_size=32, patch_size=4, num_classes=10, embed_dim=128, depth=6, num_heads=4, mlp_ratio=2.0
    )


@register_model(ViT)
def vit_nano_patch4_16() -> ViTConfig:
    """A ViT for 16×16 images: 4×4 patches → 16 tokens, D=64, 4 blocks, 4 heads."""
    return ViTConfig(
        img_size=16, patch_size=4, num_classes=10, embed_dim=64, depth=4, num_heads=4, mlp_ratio=2.0
    )


@register_model(ViT)
def vit_pico_patch2_8() -> ViTConfig:
    """A ViT for 8×8 grey images (scikit-learn's digits): 2×2 patches → 16 tokens, D=32, 2 blocks."""
    return ViTConfig(
        img_size=8, patch_size=2, in_chans=1, num_classes=10, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0
    )
