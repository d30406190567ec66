"""Windowed attention, the core of the Swin Transformer (Liu et al., 2021).

Global attention over an ``H × W`` grid of tokens costs ``(HW)²`` scores. Swin cuts the
grid into non-overlapping ``M × M`` windows and lets tokens attend only inside their
window: ``(H/M)(W/M)`` windows of ``M⁴`` scores each, ``M² HW`` in total, linear in the
number of tokens for a fixed ``M`` (7 in Swin):

    Ω(MSA)   = 4 hw C² + 2 (hw)² C
    Ω(W-MSA) = 4 hw C² + 2 M² hw C

Windows don't talk to each other, so every second block shifts the partition by
``⌊M/2⌋`` tokens. Instead of padding the partial windows this creates at the borders,
the image is rolled cyclically (``torch.roll``) so the shifted partition is again a grid
of full windows; a mask then stops tokens that came from different parts of the image
(wrapped around by the roll) from attending to each other.

Inside a window, positions enter as a *relative position bias*: a learned table of
``(2M-1)²`` entries per head, indexed by the offset ``(Δy, Δx)`` between query and key.

This module holds the pieces: :func:`window_partition` / :func:`window_reverse`,
:func:`relative_position_index`, :func:`shifted_window_mask` and :class:`WindowAttention`.
Layouts are batch first and channels last: feature maps are ``(B, H, W, C)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MultiHeadAttention, scaled_dot_product_attention

__all__ = [
    "WindowAttention",
    "relative_position_index",
    "shifted_window_mask",
    "window_partition",
    "window_reverse",
]


def _check_divisible(height: int, width: int, window_size: int) -> None:
    if height % window_size or width % window_size:
        divisors = [m for m in range(1, min(height, width) + 1) if height % m == 0 and width % m == 0]
        raise ValueError(
            f"window_size={window_size} does not divide the {height}x{width} grid of tokens; "
            f"pick window_size in {divisors}, or an image size that makes the grid a multiple of {window_size}"
        )


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Cut a feature map into non-overlapping ``M × M`` windows.

    Args:
        x: ``(B, H, W, C)``; ``H`` and ``W`` multiples of ``window_size``.
        window_size: side ``M`` of the windows.

    Returns:
        ``(B, num_windows, M*M, C)``: windows in raster order, the ``M*M`` tokens of a
        window in raster order, ``num_windows = (H/M) * (W/M)``.
    """
    if x.ndim != 4:
        raise ValueError(
            f"expected a feature map shaped (B, H, W, C), got {tuple(x.shape)}"
        )
    B, H, W, C = x.shape
    _check_divisible(H, W, window_size)
    M = window_size
    x = x.view(B, H // M, M, W // M, M, C)  # (B, nh, M, nw, M, C)
    x = x.permute(0, 1, 3, 2, 4, 5)  # (B, nh, nw, M, M, C)
    return x.reshape(B, (H // M) * (W // M), M * M, C)  # (B, nW, M*M, C)


def window_reverse(windows: torch.Tensor, window_size: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: put the windows back into a feature map.

    Args:
        windows: ``(B, num_windows, M*M, C)``.
        window_size: side ``M`` of the windows.
        height: ``H`` of the feature map.
        width: ``W`` of the feature map.

    Returns:
        ``(B, H, W, C)``.
    """
    _check_divisible(height, width, window_size)
    M = window_size
    nh, nw = height // M, width // M
    if windows.ndim != 4 or windows.shape[1] != nh * nw or windows.shape[2] != M * M:
        raise ValueError(
            f"expected windows shaped (B, {nh * nw}, {M * M}, C) for a {height}x{width} map cut into "
            f"{M}x{M} windows, got {tuple(windows.shape)}"
        )
    B, _, _, C = windows.shape
    x = windows.view(B, nh, nw, M, M, C)  # (B, nh, nw, M, M, C)
    x = x.permute(0, 1, 3, 2, 4, 5)  # (B, nh, M, nw, M, C)
    return x.reshape(B, height, width, C)


def relative_position_index(window_size: int) -> torch.Tensor:
    """Index of each (query, key) pair of a window into the relative-bias table.

    Tokens ``i = (y_i, x_i)`` and ``j = (y_j, x_j)`` of an ``M × M`` window are
    ``Δy = y_i - y_j`` and ``Δx = x_i - x_j`` apart, both in ``[-(M-1), M-1]``: ``2M-1``
    values each. Shifted to start at 0, they index a ``(2M-1) × (2M-1)`` table, stored
    flat: ``(Δy + M - 1) · (2M - 1) + (Δx + M - 1)``.

    Args:
        window_size: side ``M`` of the window.

    Returns:
        ``(M*M, M*M)`` long tensor with values in ``[0, (2M-1)²)``.
    """
    M = window_size
    ys, xs = torch.meshgrid(torch.arange(M), torch.arange(M), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # (2, M*M)
    # (2, M*M, M*M): (Δy, Δx) of every pair
    delta = coords[:, :, None] - coords[:, None, :]
    delta = delta + (M - 1)  # from [-(M-1), M-1] to [0, 2M-2]
    return delta[0] * (2 * M - 1) + delta[1]


def shifted_window_mask(
    height: int, width: int, window_size: int, shift_size: int
) -> torch.Tensor:
    """Additive attention mask for windows of a cyclically shifted feature map.

    After ``torch.roll(x, (-s, -s))`` the last row and column of windows hold tokens
    from opposite borders of the image. Label the rolled map by region (three bands per
    axis: ``[0, H-M)``, ``[H-M, H-s)``, ``[H-s, H)``, and the same for columns); two
    tokens of a window may attend to each other only if they carry the same label.

    Args:
        height: ``H`` of the feature map.
        width: ``W`` of the feature map.
        window_size: side ``M`` of the windows.
        shift_size: the shift ``s``, ``0 < s < M``.

    Returns:
        ``(num_windows, M*M, M*M)`` float mask: 0 where attention is allowed, ``-inf``
        where it is not (add it to the scores).
    """
    if not 0 < shift_size < window_size:
        raise ValueError(
            f"shift_size must be in (0, window_size={window_size}), got {shift_size}"
        )
    M, s = window_size, shift_size
    labels = torch.zeros(1, height, width, 1)
    bands = (slice(0, -M), slice(-M, -s), slice(-s, None))
    region = 0
    for rows in bands:
        for cols in bands:
            labels[:, rows, cols, :] = region
            region += 1
    windows = window_partition(labels, M).squeeze(-1)[0]  # (nW, M*M): a label per token
    same_region = windows[:, :, None] == windows[:, None, :]  # (nW, M*M, M*M)
    mask = torch.zeros(same_region.shape)
    return mask.masked_fill(~same_region, float("-inf"))


class WindowAttention(MultiHeadAttention):
    """Multi-head self-attention inside windows, with a learned relative position bias.

    ``Attention(Q, K, V) = softmax(Q Kᵀ / √d + B + mask) V`` where ``B`` is looked up in
    ``relative_position_bias_table`` (``(2M-1)²`` rows, one column per head) by
    :func:`relative_position_index`. The projections ``qkv`` and ``proj`` are those of
    :class:`~vitcourse.layers.MultiHeadAttention`, whose attention this is; only the
    bias, the mask and the window axis are new.

    Args:
        embed_dim: token dimension ``C``.
        num_heads: attention heads ``h``.
        window_size: side ``M`` of the windows.
        qkv_bias: bias in the Q, K, V projections.
        dropout: dropout on the attention weights during training.

    Shapes:
        windows ``(B, nW, M*M, C)`` → ``(B, nW, M*M, C)``; weights ``(B, nW, h, M*M, M*M)``.
    """

    def __init__(
        self, embed_dim: int, num_heads: int, window_size: int = 7, qkv_bias: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__(embed_dim, num_heads, qkv_bias=qkv_bias, dropout=dropout)
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        # Derived from window_size, so rebuilt rather than saved in checkpoints (as in timm).
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, window_size={self.window_size}"

    def relative_position_bias(self) -> torch.Tensor:
        """The bias ``B`` added to every window's scores: ``(h, M*M, M*M)``."""
        N = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]  # (N*N, h)
        return bias.view(N, N, self.num_heads).permute(2, 0, 1)  # (h, N, N)

    def forward(
        self,
        windows: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend within each window.

        Args:
            windows: ``(B, nW, N, C)`` from :func:`window_partition`, ``N = M*M``.
            mask: optional ``(nW, N, N)`` additive mask (:func:`shifted_window_mask`).
            return_attention: also return the attention weights (manual path).

        Returns:
            ``(B, nW, N, C)``, or that and the weights ``(B, nW, h, N, N)``.
        """
        N = self.window_size**2
        if windows.ndim != 4 or windows.shape[2:] != (N, self.embed_dim):
            raise ValueError(
                f"expected windows shaped (B, num_windows, {N}, {self.embed_dim}), got {tuple(windows.shape)}"
            )
        B, nW, _, C = windows.shape
        qkv = self.qkv(windows).view(B, nW, N, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)  # 3 × (B, nW, h, N, hd)
        bias = self.relative_position_bias()  # (h, N, N)
        if mask is not None:
            bias = bias + mask[:, None]  # (nW, h, N, N): broadcasts over the batch
        dropout_p = self.dropout if self.training else 0.0
        if return_attention:
            out, weights = scaled_dot_product_attention(q, k, v, bias)
            if dropout_p:
                out = F.dropout(weights, dropout_p) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)
        out = out.transpose(2, 3).reshape(B, nW, N, C)  # (B, nW, N, h*hd)
        out = self.proj(out)
        return (out, weights) if return_attention else out
