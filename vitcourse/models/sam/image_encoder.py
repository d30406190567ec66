"""SAM's image encoder: a ViT without ``[CLS]``, with windowed attention, and a convolutional neck.

It is the plain ViT of :mod:`vitcourse.models.vit` (patch embedding, learned positions,
pre-norm encoder blocks built on :class:`~vitcourse.layers.MultiHeadAttention`) with
three changes for 1024×1024 images (a 64×64 grid, 4096 tokens):

* most blocks attend inside ``M×M`` windows (the grid padded to a multiple of ``M``);
  a few (``global_attn_indexes``) attend over the whole grid, so information still
  crosses the windows;
* every block adds **decomposed relative positions** to the attention scores: for a
  query at ``(y, x)`` and a key at ``(y', x')``, ``q·R_h[y - y'] + q·R_w[x - x']``
  (MViTv2), two learned tables of ``2S - 1`` rows each;
* no ``[CLS]`` token, no final LayerNorm and no head: the tokens stay a grid, and the
  **neck** (1×1 convolution to ``out_chans`` channels, LayerNorm, 3×3 convolution,
  LayerNorm) turns it into the image embedding ``(B, out_chans, H/P, W/P)``.

The embedding is computed once per image; every prompt reuses it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...layers import EncoderBlock, PatchEmbedding, window_partition, window_reverse
from .common import LayerNorm2d

__all__ = ["SamImageEncoder", "WindowedBlock", "decomposed_relative_bias"]


def _relative_table(size: int, table: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` (``(2 size - 1, C)``) for every query/key offset: ``(size, size, C)``."""
    if table.shape[0] != 2 * size - 1:
        raise ValueError(
            f"a relative-position table for a side of {size} needs {2 * size - 1} rows, got "
            f"{table.shape[0]}; build the encoder for the image size you feed it"
        )
    coords = torch.arange(size, device=table.device)
    offsets = coords[:, None] - coords[None, :] + (size - 1)  # (size, size) in 0 .. 2 size - 2
    return table[offsets]


def decomposed_relative_bias(
    q: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """The bias ``q·R_h[y - y'] + q·R_w[x - x']`` of every query/key pair.

    Args:
        q: queries ``(B, h, H*W, hd)`` (before the ``1/√hd`` scaling).
        rel_h: ``(2H - 1, hd)`` table of vertical offsets.
        rel_w: ``(2W - 1, hd)`` table of horizontal offsets.
        height: ``H`` of the token grid.
        width: ``W``.

    Returns:
        ``(B, h, H*W, H*W)``, added to the attention scores.
    """
    B, h, N, hd = q.shape
    Rh = _relative_table(height, rel_h)  # (H, H, hd)
    Rw = _relative_table(width, rel_w)  # (W, W, hd)
    grid = q.reshape(B * h, height, width, hd)
    bias_h = torch.einsum("byxc,ykc->byxk", grid, Rh)  # (Bh, H, W, H)
    bias_w = torch.einsum("byxc,xkc->byxk", grid, Rw)  # (Bh, H, W, W)
    bias = bias_h[..., :, None] + bias_w[..., None, :]  # (Bh, H, W, H, W)
    return bias.reshape(B, h, N, N)


class WindowedBlock(EncoderBlock):
    """A pre-norm encoder block on a token grid, attending in windows or globally.

    The parts (``norm1``, ``attn``, ``norm2``, ``mlp``) are
    :class:`~vitcourse.layers.EncoderBlock`'s; new are the window partition (with zero
    padding to a multiple of ``window_size``) and the relative-position tables.

    Args:
        embed_dim: token dimension ``D``.
        num_heads: attention heads.
        grid_size: the token grid ``(H, W)`` of the whole image.
        window_size: side ``M`` of the windows; 0 attends over the whole grid.
        mlp_ratio: MLP hidden size over ``D``.
        qkv_bias: bias in the Q, K, V projections.
        use_rel_pos: add decomposed relative positions to the scores.
        norm_eps: LayerNorm epsilon.

    Shapes:
        ``(B, H, W, D)`` → ``(B, H, W, D)``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        grid_size: tuple[int, int],
        window_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        use_rel_pos: bool = True,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, norm_eps=norm_eps)
        self.window_size = window_size
        self.use_rel_pos = use_rel_pos
        side_h, side_w = (window_size, window_size) if window_size else grid_size
        self.attn_size = (side_h, side_w)
        if use_rel_pos:
            head_dim = embed_dim // num_heads
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * side_h - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * side_w - 1, head_dim))

    def extra_repr(self) -> str:
        return f"window_size={self.window_size}, use_rel_pos={self.use_rel_pos}"

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        """Self-attention inside each ``(B', h, w, D)`` map (a window or the whole grid)."""
        Bw, h, w, D = x.shape
        bias = None
        if self.use_rel_pos:
            def bias(q: torch.Tensor) -> torch.Tensor:
                return decomposed_relative_bias(q, self.rel_pos_h, self.rel_pos_w, h, w)
        out = self.attn(x.reshape(Bw, h * w, D), bias_from_queries=bias)  # (B', h*w, D)
        return out.view(Bw, h, w, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Run the block on a token grid ``(B, H, W, D)``."""
        shortcut = x
        x = self.norm1(x)
        if self.window_size:
            B, H, W, D = x.shape
            M = self.window_size
            pad_h, pad_w = (-H) % M, (-W) % M
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # (B, H + pad_h, W + pad_w, D)
            windows = window_partition(x, M)  # (B, nW, M*M, D)
            nW = windows.shape[1]
            out = self._attend(windows.reshape(B * nW, M, M, D))  # (B*nW, M, M, D)
            x = window_reverse(out.reshape(B, nW, M * M, D), M, H + pad_h, W + pad_w)
            x = x[:, :H, :W]
        else:
            x = self._attend(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class SamImageEncoder(nn.Module):
    """Images to SAM's image embedding.

    Args:
        img_size: side of the square input (1024 in SAM).
        patch_size: side ``P`` of the patches (16).
        in_chans: input channels.
        embed_dim: ViT token dimension ``D``.
        depth: encoder blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden size over ``D``.
        out_chans: channels of the image embedding (256).
        qkv_bias: bias in the Q, K, V projections.
        norm_eps: LayerNorm epsilon of the blocks.
        use_abs_pos: add a learned position per grid cell.
        use_rel_pos: decomposed relative positions in every block.
        window_size: side of the attention windows (14); 0 for global attention everywhere.
        global_attn_indexes: blocks that attend over the whole grid.

    Shapes:
        images ``(B, C, S, S)`` → embedding ``(B, out_chans, S/P, S/P)``.
    """

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        out_chans: int = 256,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        use_abs_pos: bool = True,
        use_rel_pos: bool = True,
        window_size: int = 14,
        global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11),
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbedding(img_size, patch_size, in_chans, embed_dim)
        gh, gw = self.patch_embed.grid_size
        self.pos_embed = nn.Parameter(torch.zeros(1, gh, gw, embed_dim)) if use_abs_pos else None
        self.blocks = nn.ModuleList(
            WindowedBlock(
                embed_dim,
                num_heads,
                grid_size=(gh, gw),
                window_size=0 if i in global_attn_indexes else window_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                use_rel_pos=use_rel_pos,
                norm_eps=norm_eps,
            )
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    @property
    def grid_size(self) -> tuple[int, int]:
        """The embedding's ``(H/P, W/P)``."""
        return tuple(self.patch_embed.grid_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embed a batch of images.

        Args:
            images: ``(B, C, S, S)``, normalised.

        Returns:
            ``(B, out_chans, S/P, S/P)``.
        """
        gh, gw = self.grid_size
        x = self.patch_embed(images)  # (B, N, D)
        x = x.view(x.shape[0], gh, gw, -1)  # (B, gh, gw, D)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))  # (B, out_chans, gh, gw)
