"""Figures of Swin's machinery, computed by the package's own functions (so they can't disagree with the model).

* :func:`plot_patch_merging`: which four tokens :class:`~vitcourse.layers.PatchMerging`
  concatenates into each new token, read from the module while it runs;
* :func:`shifted_window_groups` and :func:`plot_shifted_windows`: the regular windows, the
  shifted ones after the cyclic shift, and the mask that keeps apart the tokens a roll
  brought together, from :func:`~vitcourse.layers.window_partition`, ``torch.roll`` and
  :func:`~vitcourse.layers.shifted_window_mask`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.patches import Rectangle

from ..layers import PatchMerging
from ..layers.window import shifted_window_mask, window_partition, window_reverse

__all__ = ["merged_token_sources", "plot_patch_merging", "plot_shifted_windows", "shifted_window_groups"]

_PALETTE = plt.get_cmap("tab20").colors


def merged_token_sources(height: int = 4, width: int = 4) -> torch.Tensor:
    """Which input tokens each output token of :class:`~vitcourse.layers.PatchMerging` is made of.

    A one-channel map holding each token's raster index goes through a ``PatchMerging``;
    a hook reads the ``4C`` concatenation just before its LayerNorm.

    Args:
        height, width: the input grid (even sides).

    Returns:
        ``(height/2, width/2, 4)`` long tensor: for each merged token, the raster indices
        of the four input tokens in the order they are concatenated.
    """
    merging = PatchMerging(embed_dim=1)
    captured = []
    handle = merging.norm.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    ids = torch.arange(height * width, dtype=torch.float32).view(1, height, width, 1)  # (B, H, W, C=1)
    try:
        with torch.no_grad():
            merging(ids)
    finally:
        handle.remove()
    return captured[0][0].round().long()  # (H/2, W/2, 4C) with C = 1


def plot_patch_merging(height: int = 4, width: int = 4) -> plt.Figure:
    """Patch merging drawn from the module: ``H × W`` tokens of ``C`` channels → ``H/2 × W/2`` tokens of ``4C``, then ``2C``.

    Left: the input grid, each token coloured by the output token it goes into. Middle:
    each merged token as its ``4C`` concatenation, four blocks of ``C`` channels in order.
    Right: the linear layer ``4C → 2C``.

    Returns:
        The figure.
    """
    sources = merged_token_sources(height, width)  # (H/2, W/2, 4)
    gh, gw = sources.shape[:2]
    group_of = np.zeros(height * width, dtype=int)
    for i in range(gh):
        for j in range(gw):
            group_of[sources[i, j].numpy()] = i * gw + j
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 1.25, 0.8]})
    ax = axes[0]
    for index in range(height * width):
        y, x = divmod(index, width)
        ax.add_patch(Rectangle((x, y), 1, 1, facecolor=_PALETTE[2 * group_of[index] % 20], edgecolor="white", lw=2))
        ax.text(x + 0.5, y + 0.5, str(index), ha="center", va="center", fontsize=10)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_title(f"{height}×{width} tokens, C canales")
    ax.axis("off")
    ax = axes[1]
    for i in range(gh):
        for j in range(gw):
            group = i * gw + j
            for k, index in enumerate(sources[i, j].tolist()):
                x0 = j * 2.2 + k * 0.5
                ax.add_patch(Rectangle((x0, i * 1.4), 0.5, 1, facecolor=_PALETTE[2 * group % 20], edgecolor="white"))
                ax.text(x0 + 0.25, i * 1.4 + 0.5, str(index), ha="center", va="center", fontsize=9)
    ax.set_xlim(-0.1, gw * 2.2)
    ax.set_ylim(gh * 1.4, -0.2)
    ax.set_title(f"{gh}×{gw} tokens, 4C (concatenación)")
    ax.axis("off")
    ax = axes[2]
    ax.annotate("", xy=(0.95, 0.5), xytext=(0.05, 0.5), arrowprops={"arrowstyle": "->", "lw": 2})
    ax.text(0.5, 0.62, "LayerNorm +\nLinear(4C → 2C)", ha="center", va="bottom", fontsize=10)
    ax.text(0.5, 0.38, f"{gh}×{gw} tokens, 2C", ha="center", va="top", fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    return fig


def shifted_window_groups(height: int, width: int, window_size: int, shift_size: int) -> dict[str, torch.Tensor]:
    """The partitions of a shifted-window block, computed with the package's functions.

    Args:
        height, width: the token grid (multiples of ``window_size``).
        window_size: ``M``.
        shift_size: ``s``, ``0 < s < M``.

    Returns:
        A dict of ``(height, width)`` long maps, in **image** coordinates (where each token
        sits before the roll):

        * ``"window"``: the regular window of each token (W-MSA);
        * ``"shifted_window"``: the window each token falls in after the cyclic shift
          (SW-MSA), before masking;
        * ``"group"``: tokens that may attend to each other (same window *and* allowed by
          :func:`~vitcourse.layers.shifted_window_mask`) share a number;

        and ``"mask"``: the ``(num_windows, M*M, M*M)`` mask itself.
    """
    M, s = window_size, shift_size
    ids = torch.arange(height * width).view(1, height, width, 1)  # (1, H, W, 1): raster index of each token
    num_windows = (height // M) * (width // M)
    window_ids = torch.arange(num_windows).view(1, num_windows, 1, 1).expand(1, num_windows, M * M, 1)
    regular = window_reverse(window_ids.float(), M, height, width)[0, ..., 0].long()  # (H, W)

    rolled = torch.roll(ids, shifts=(-s, -s), dims=(1, 2))  # what SwinBlock does before partitioning
    windows = window_partition(rolled.float(), M)[0, ..., 0].long()  # (nW, M*M): token ids per window
    mask = shifted_window_mask(height, width, M, s)  # (nW, M*M, M*M)
    shifted = torch.empty(height * width, dtype=torch.long)
    group = torch.empty(height * width, dtype=torch.long)
    next_group = 0
    for w in range(num_windows):
        shifted[windows[w]] = w
        allowed = mask[w] == 0  # (M*M, M*M): who may attend to whom inside window w
        patterns = {}
        for position in range(M * M):
            pattern = tuple(allowed[position].tolist())  # tokens of one region share their row
            if pattern not in patterns:
                patterns[pattern] = next_group
                next_group += 1
            group[windows[w, position]] = patterns[pattern]
    return {
        "window": regular,
        "shifted_window": shifted.view(height, width),
        "group": group.view(height, width),
        "mask": mask,
    }


def _draw_grid(ax: plt.Axes, labels: np.ndarray, title: str, borders: np.ndarray | None = None) -> None:
    """Tokens coloured by label; thick lines where ``borders`` labels change."""
    count = int(labels.max()) + 1
    ax.imshow(labels, cmap=ListedColormap([_PALETTE[(2 * k + 1) % 20] for k in range(count)]), vmin=-0.5,
              vmax=count - 0.5)
    height, width = labels.shape
    edges = labels if borders is None else borders
    for y in range(height):
        for x in range(width):
            if x + 1 < width and edges[y, x] != edges[y, x + 1]:
                ax.plot([x + 0.5, x + 0.5], [y - 0.5, y + 0.5], color="black", lw=2.2)
            if y + 1 < height and edges[y, x] != edges[y + 1, x]:
                ax.plot([x - 0.5, x + 0.5], [y + 0.5, y + 0.5], color="black", lw=2.2)
    ax.set_xticks(np.arange(-0.5, width, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, height, 1), minor=True)
    ax.grid(which="minor", color="white", lw=0.6)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(title, fontsize=10)


def plot_shifted_windows(height: int = 8, width: int = 8, window_size: int = 4, shift_size: int = 2) -> plt.Figure:
    """Four panels: W-MSA windows, SW-MSA windows, the rolled map, and one window's mask.

    1. the regular ``M × M`` windows of a W-MSA block;
    2. in image coordinates, the windows of the next (SW-MSA) block: the partition moved by
       ``s`` tokens; tokens that may attend to each other share a colour, and the thick
       lines show the windows the cyclic shift computes (one of them gathers the four
       corners of the image);
    3. the same tokens after ``torch.roll(x, (-s, -s))``: regular windows again, each
       holding up to four regions;
    4. the attention mask of the last window: black where :func:`shifted_window_mask`
       puts ``-inf``.

    Returns:
        The figure.
    """
    parts = shifted_window_groups(height, width, window_size, shift_size)
    s = shift_size
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    _draw_grid(axes[0], parts["window"].numpy(), f"W-MSA: ventanas de {window_size}×{window_size}")
    _draw_grid(
        axes[1], parts["group"].numpy(), f"SW-MSA: ventanas corridas {s}", borders=parts["shifted_window"].numpy()
    )
    rolled_groups = torch.roll(parts["group"], shifts=(-s, -s), dims=(0, 1)).numpy()
    rolled_windows = torch.roll(parts["shifted_window"], shifts=(-s, -s), dims=(0, 1)).numpy()
    _draw_grid(axes[2], rolled_groups, f"tras torch.roll(x, -{s}): regiones", borders=rolled_windows)
    mask = parts["mask"][-1]
    axes[3].imshow(torch.isinf(mask).numpy(), cmap="Greys", interpolation="nearest")
    axes[3].set_title(f"máscara de la última ventana ({mask.shape[0]}×{mask.shape[1]})", fontsize=10)
    axes[3].set_xlabel("key")
    axes[3].set_ylabel("query")
    axes[3].tick_params(labelsize=7)
    fig.tight_layout()
    return fig
