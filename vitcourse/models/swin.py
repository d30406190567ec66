"""The Swin Transformer (Liu et al., 2021): a hierarchical ViT with shifted windows.

ViT keeps one resolution through all its blocks; a CNN halves the resolution and
widens the channels stage after stage. Swin does what the CNN does, with attention:

1. cut the image into ``4 × 4`` patches and project them to ``C`` channels;
2. four stages; each (after the first) starts with :class:`~vitcourse.layers.PatchMerging`
   (``2 × 2`` neighbours, ``4C → 2C``), so the grid goes ``H/4 → H/8 → H/16 → H/32``;
3. inside a stage, blocks alternate window attention (W-MSA) and shifted-window
   attention (SW-MSA), each with a relative position bias
   (:class:`~vitcourse.layers.WindowAttention`);
4. LayerNorm, average over the final grid, linear head.

Feature maps are ``(B, H, W, C)`` (channels last) inside the model. Names follow timm
(``patch_embed.proj``, ``layers.{i}.downsample``, ``layers.{i}.blocks.{j}.attn.qkv``,
``norm``…); the patch-embedding norm is ``patch_norm`` here and the head is ``head``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import MLP, DropPath, PatchEmbedding, PatchMerging, WindowAttention, drop_path_schedule
from ..layers.window import shifted_window_mask, window_partition, window_reverse
from .registry import register_model

__all__ = ["Swin", "SwinBlock", "SwinConfig", "SwinStage"]


def _window_and_shift(resolution: int, window_size: int, shifted: bool) -> tuple[int, int]:
    """The window side and shift a block uses on a ``resolution × resolution`` grid.

    A grid no larger than a window is one window (and shifting it would change
    nothing), as in the paper's code: Swin-T's last stage (7×7) has no shifts.
    """
    if resolution <= window_size:
        return resolution, 0
    if resolution % window_size:
        divisors = [m for m in range(2, resolution + 1) if resolution % m == 0]
        raise ValueError(
            f"window_size={window_size} does not divide the {resolution}x{resolution} grid of a Swin stage; "
            f"pick window_size in {divisors} (or one >= {resolution}), or change img_size/patch_size"
        )
    return window_size, window_size // 2 if shifted else 0


class SwinBlock(nn.Module):
    """One Swin block: (shifted) window attention and an MLP, pre-norm with residuals.

    ``x = x + DropPath(W-MSA(LN(x)))`` then ``x = x + DropPath(MLP(LN(x)))``; W-MSA
    becomes SW-MSA when ``shifted``: roll the map by ``-s``, attend within windows with
    :func:`~vitcourse.layers.shifted_window_mask`, roll back by ``+s``.

    Args:
        embed_dim: channels ``C``.
        num_heads: attention heads.
        resolution: side of the (square) ``H × W`` grid of tokens the block sees.
        window_size: side ``M`` of the windows (shrunk to ``resolution`` if larger).
        shifted: shift the windows by ``⌊M/2⌋`` (odd blocks of a stage).
        mlp_ratio: MLP hidden size over ``C``.
        qkv_bias: bias in the Q, K, V projections.
        dropout: dropout inside the MLP and on the attention output.
        attn_dropout: dropout on the attention weights.
        drop_path: stochastic-depth probability.

    Shapes:
        ``(B, H, W, C)`` → ``(B, H, W, C)``; weights ``(B, num_windows, h, M*M, M*M)``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        resolution: int,
        window_size: int = 7,
        shifted: bool = False,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.window_size, self.shift_size = _window_and_shift(resolution, window_size, shifted)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attn = WindowAttention(embed_dim, num_heads, self.window_size, qkv_bias=qkv_bias, dropout=attn_dropout)
        self.drop = nn.Dropout(dropout)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = MLP(embed_dim, int(embed_dim * mlp_ratio), dropout=dropout)
        mask = None
        if self.shift_size:
            mask = shifted_window_mask(resolution, resolution, self.window_size, self.shift_size)
        self.register_buffer("attn_mask", mask, persistent=False)  # (nW, M*M, M*M) or None

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, window_size={self.window_size}, shift_size={self.shift_size}"

    def _window_attention(
        self, x: torch.Tensor, return_attention: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, H, W, C = x.shape
        s, M = self.shift_size, self.window_size
        if s:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))  # the cyclic shift
        windows = window_partition(x, M)  # (B, nW, M*M, C)
        out = self.attn(windows, mask=self.attn_mask, return_attention=return_attention)
        weights = None
        if return_attention:
            out, weights = out  # weights: (B, nW, h, M*M, M*M)
        x = window_reverse(out, M, H, W)  # (B, H, W, C)
        if s:
            x = torch.roll(x, shifts=(s, s), dims=(1, 2))  # undo the shift
        return x, weights

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Run the block on a ``(B, H, W, C)`` map (and return the window attention if asked)."""
        if x.ndim != 4 or x.shape[1] != self.resolution or x.shape[2] != self.resolution:
            raise ValueError(
                f"expected a feature map shaped (B, {self.resolution}, {self.resolution}, C), got {tuple(x.shape)}"
            )
        attended, weights = self._window_attention(self.norm1(x), return_attention)
        x = x + self.drop_path(self.drop(attended))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return (x, weights) if return_attention else x


class SwinStage(nn.Module):
    """Optional patch merging, then ``depth`` Swin blocks alternating W-MSA and SW-MSA.

    Args:
        in_dim: channels of the input map.
        embed_dim: channels inside the stage (``2 * in_dim`` after merging).
        resolution: grid side inside the stage (after merging).
        depth: number of blocks.
        num_heads: attention heads.
        window_size: window side ``M``.
        downsample: start with :class:`~vitcourse.layers.PatchMerging`.
        drop_path: one stochastic-depth probability per block.
        **block_kwargs: ``mlp_ratio``, ``qkv_bias``, ``dropout``, ``attn_dropout``.

    Shapes:
        ``(B, H, W, in_dim)`` → ``(B, resolution, resolution, embed_dim)``.
    """

    def __init__(
        self,
        in_dim: int,
        embed_dim: int,
        resolution: int,
        depth: int,
        num_heads: int,
        window_size: int,
        downsample: bool,
        drop_path: list[float],
        **block_kwargs,
    ) -> None:
        super().__init__()
        self.downsample = PatchMerging(in_dim, embed_dim) if downsample else nn.Identity()
        self.blocks = nn.ModuleList(
            SwinBlock(
                embed_dim,
                num_heads,
                resolution,
                window_size,
                shifted=i % 2 == 1,
                drop_path=drop_path[i],
                **block_kwargs,
            )
            for i in range(depth)
        )

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the stage; with ``return_attention`` also each block's window attention."""
        x = self.downsample(x)
        attentions = []
        for block in self.blocks:
            if return_attention:
                x, weights = block(x, return_attention=True)
                attentions.append(weights)
            else:
                x = block(x)
        return (x, attentions) if return_attention else x


@dataclass
class SwinConfig:
    """Hyper-parameters of a :class:`Swin`, with Swin-T's values as defaults.

    Args:
        img_size: input side (square images).
        patch_size: side of the first patches (4 in the paper).
        in_chans: input channels.
        num_classes: classes of the head (0: identity, the model returns features).
        embed_dim: channels ``C`` of the first stage; stage ``i`` has ``2^i C``.
        depths: blocks per stage.
        num_heads: heads per stage.
        window_size: window side ``M``.
        mlp_ratio: MLP hidden size over the channels.
        qkv_bias: bias in the Q, K, V projections.
        dropout: dropout after the patch embedding, inside MLPs, on attention outputs.
        attn_dropout: dropout on the attention weights.
        drop_path: stochastic-depth rate of the last block (linear schedule from 0).
    """

    img_size: int = 224
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    dropout: float = 0.0
    attn_dropout: float = 0.0
    drop_path: float = 0.0

    def __post_init__(self) -> None:
        self.depths, self.num_heads = tuple(self.depths), tuple(self.num_heads)
        if len(self.depths) != len(self.num_heads):
            raise ValueError(
                f"depths and num_heads need one entry per stage, got {len(self.depths)} and {len(self.num_heads)}"
            )
        if not isinstance(self.img_size, int):
            raise ValueError(f"Swin takes square images: img_size must be an int, got {self.img_size!r}")
        if self.img_size % self.patch_size:
            raise ValueError(
                f"img_size={self.img_size} is not a multiple of patch_size={self.patch_size}; "
                f"resize the images or pick a patch_size dividing {self.img_size}"
            )
        merges = 2 ** (len(self.depths) - 1)
        if (self.img_size // self.patch_size) % merges:
            raise ValueError(
                f"{len(self.depths)} stages halve the {self.img_size // self.patch_size}x"
                f"{self.img_size // self.patch_size} patch grid {len(self.depths) - 1} times, so it must be a "
                f"multiple of {merges}; use img_size a multiple of {self.patch_size * merges} or fewer stages"
            )
        for i, heads in enumerate(self.num_heads):
            dim = self.embed_dim * 2**i
            if dim % heads:
                raise ValueError(
                    f"stage {i} has {dim} channels, not divisible by num_heads[{i}]={heads}; "
                    f"pick num_heads that divide embed_dim * 2**stage"
                )
        for resolution in self.resolutions:
            _window_and_shift(resolution, self.window_size, shifted=True)  # raises if M doesn't fit

    @property
    def resolutions(self) -> list[int]:
        """Side of the token grid in each stage."""
        grid = self.img_size // self.patch_size
        return [grid // 2**i for i in range(len(self.depths))]


class Swin(nn.Module):
    """Swin Transformer classifier.

    Args:
        config: the hyper-parameters (:class:`SwinConfig`).

    Shapes:
        images ``(B, C, H, W)`` → logits ``(B, num_classes)``; with ``return_attention``
        also, per stage, a list of its blocks' weights ``(B, num_windows, h, M*M, M*M)``.
    """

    def __init__(self, config: SwinConfig) -> None:
        super().__init__()
        self.config = config
        C = config.embed_dim
        self.patch_embed = PatchEmbedding(config.img_size, config.patch_size, config.in_chans, C)
        self.patch_norm = nn.LayerNorm(C)
        self.pos_drop = nn.Dropout(config.dropout)
        rates = drop_path_schedule(config.drop_path, sum(config.depths))
        self.layers = nn.ModuleList()
        for i, (depth, heads, resolution) in enumerate(zip(config.depths, config.num_heads, config.resolutions)):
            first = sum(config.depths[:i])
            self.layers.append(
                SwinStage(
                    in_dim=C * 2 ** max(i - 1, 0),
                    embed_dim=C * 2**i,
                    resolution=resolution,
                    depth=depth,
                    num_heads=heads,
                    window_size=config.window_size,
                    downsample=i > 0,
                    drop_path=rates[first : first + depth],
                    mlp_ratio=config.mlp_ratio,
                    qkv_bias=config.qkv_bias,
                    dropout=config.dropout,
                    attn_dropout=config.attn_dropout,
                )
            )
        self.num_features = C * 2 ** (len(config.depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, config.num_classes) if config.num_classes > 0 else nn.Identity()
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """Truncated normal (std 0.02) for the linear layers, zero biases (as Swin and timm)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patches per column and per row of the first stage."""
        return tuple(self.patch_embed.grid_size)

    @property
    def num_patches(self) -> int:
        """Tokens of the first stage (``(img_size / patch_size)²``)."""
        return self.patch_embed.num_patches

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Patch embedding as a map: ``(B, C_in, H, W)`` → ``(B, H/P, W/P, C)``."""
        x = self.patch_norm(self.patch_embed(images))  # (B, N, C)
        gh, gw = self.grid_size
        return self.pos_drop(x.view(x.shape[0], gh, gw, -1))  # (B, gh, gw, C)

    def forward_features(
        self, images: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """Images to the normalised last-stage map ``(B, h, w, C_last)`` (and attention, if asked)."""
        x = self.embed(images)
        attentions = []
        for stage in self.layers:
            if return_attention:
                x, weights = stage(x, return_attention=True)
                attentions.append(weights)
            else:
                x = stage(x)
        x = self.norm(x)
        return (x, attentions) if return_attention else x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Average the final map and classify: ``(B, h, w, C)`` → ``(B, num_classes)``."""
        return self.head(features.mean(dim=(1, 2)))

    def forward(
        self, images: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """Classify a batch of images.

        Args:
            images: ``(B, C, H, W)`` with the config's ``in_chans`` and ``img_size``.
            return_attention: also return the window attention of every block, grouped by stage.

        Returns:
            logits ``(B, num_classes)``, or ``(logits, [[(B, nW, h, M*M, M*M)] * depth] * stages)``.
        """
        if return_attention:
            features, attentions = self.forward_features(images, return_attention=True)
            return self.forward_head(features), attentions
        return self.forward_head(self.forward_features(images))


# -- presets ------------------------------------------------------------------------


@register_model(Swin)
def swin_tiny_patch4_window7_224() -> SwinConfig:
    """Swin-T: C=96, depths (2, 2, 6, 2), heads (3, 6, 12, 24), M=7 (28.3 M parameters)."""
    return SwinConfig(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))


@register_model(Swin)
def swin_small_patch4_window7_224() -> SwinConfig:
    """Swin-S: Swin-T with 18 blocks in stage 3 (49.6 M parameters)."""
    return SwinConfig(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24))


@register_model(Swin)
def swin_base_patch4_window7_224() -> SwinConfig:
    """Swin-B: C=128, depths (2, 2, 18, 2), heads (4, 8, 16, 32) (87.8 M parameters)."""
    return SwinConfig(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32))


@register_model(Swin)
def swin_micro_patch2_window4_32() -> SwinConfig:
    """A Swin for 32×32 images: 2×2 patches, grids 16 → 8 → 4, M=4, C=32 (our size)."""
    return SwinConfig(
        img_size=32, patch_size=2, num_classes=10, embed_dim=32, depths=(2, 2, 2), num_heads=(2, 4, 8), window_size=4
    )


@register_model(Swin)
def swin_pico_patch1_window4_8() -> SwinConfig:
    """A Swin for 8×8 grey digits: one token per pixel, grids 8 → 4, M=4, C=16 (our size)."""
    return SwinConfig(
        img_size=8,
        patch_size=1,
        in_chans=1,
        num_classes=10,
        embed_dim=16,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=4,
        mlp_ratio=2.0,
    )
