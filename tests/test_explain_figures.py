"""Figures of Swin's windows, patch merging and attention maps draw what the package computes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vitcourse.layers import resize_pos_embed  # noqa: E402
from vitcourse.viz.explain import attention_explorer, mask_outlines, plot_attention_grid  # noqa: E402
from vitcourse.viz.swin import (  # noqa: E402
    merged_token_sources,
    plot_patch_merging,
    plot_shifted_windows,
    shifted_window_groups,
)


def test_patch_merging_concatenates_top_left_bottom_left_top_right_bottom_right():
    sources = merged_token_sources(4, 6)
    assert sources.shape == (2, 3, 4)
    assert sources[0, 0].tolist() == [0, 6, 1, 7]  # (0,0), (1,0), (0,1), (1,1) of a 6-wide grid
    assert sources[1, 2].tolist() == [16, 22, 17, 23]
    assert sorted(sources.flatten().tolist()) == list(range(24))  # every token used once
    fig = plot_patch_merging()
    assert len(fig.axes) == 3
    plt.close(fig)


@pytest.mark.parametrize("size,window,shift", [(8, 4, 2), (12, 4, 2), (14, 7, 3)])
def test_shifted_windows_split_into_the_rectangles_of_a_moved_grid(size, window, shift):
    parts = shifted_window_groups(size, size, window, shift)
    per_side = size // window
    assert parts["window"].unique().numel() == per_side**2
    assert parts["shifted_window"].unique().numel() == per_side**2  # the cyclic shift keeps nW windows
    groups = parts["group"]
    assert groups.unique().numel() == (per_side + 1) ** 2  # ... the mask splits them into the moved grid's
    for g in groups.unique():
        rows, cols = torch.nonzero(groups == g, as_tuple=True)
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert box == len(rows), "each group is one rectangle of the image"
        assert parts["shifted_window"][rows, cols].unique().numel() == 1  # inside one window
    # the moved partition's first column of regions is the image's first `shift` columns
    assert groups[0, :shift].unique().numel() == 1 and groups[0, shift] != groups[0, 0]
    fig = plot_shifted_windows(size, size, window, shift)
    assert len(fig.axes) == 4
    plt.close(fig)


def test_mask_outlines_follow_a_square():
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:6, 3:8] = True
    (outline,) = mask_outlines(mask)
    assert outline[:, 0].min() == pytest.approx(2.5) and outline[:, 0].max() == pytest.approx(7.5)  # x
    assert outline[:, 1].min() == pytest.approx(1.5) and outline[:, 1].max() == pytest.approx(5.5)  # y


def test_attention_explorer_shows_one_image_at_a_time():
    B, L, h, N = 3, 2, 2, 4
    images, maps = torch.rand(B, 3, 8, 8), torch.rand(B, L, h, N)
    masks = torch.zeros(B, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True
    fig = attention_explorer(images, maps, (2, 2), {"rollout": torch.rand(B, N)}, masks, ["a (x)", "b", "c"])
    per_image = 1 + 2 * (L * h + 1)  # the picture; a heatmap and an outline per panel
    assert len(fig.data) == B * per_image
    steps = fig.layout.sliders[0].steps
    assert [step.label for step in steps] == ["a", "b", "c"]
    for index, step in enumerate(steps):
        shown = [i for i, visible in enumerate(step.args[0]["visible"]) if visible]
        assert shown == list(range(index * per_image, (index + 1) * per_image))
    heatmaps = [trace for trace in fig.data[:per_image] if trace.type == "heatmap"]
    np.testing.assert_allclose(heatmaps[1].z, maps[0, 0, 0].reshape(2, 2).numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="same B"):
        attention_explorer(images, maps[:2], (2, 2))
    with pytest.raises(ValueError, match="at most 1 summaries"):
        attention_explorer(images, maps, (2, 2), {"a": maps[:, 0, 0], "b": maps[:, 0, 0]})


def test_attention_grid_has_a_panel_per_layer_and_head():
    fig = plot_attention_grid(torch.rand(3, 8, 8), torch.rand(2, 3, 4), (2, 2), {"rollout": torch.rand(4)})
    assert len(fig.axes) == 2 * 4
    plt.close(fig)


def test_resize_pos_embed_keeps_prefix_and_reproduces_the_same_grid():
    table = torch.randn(1, 1 + 16, 8)
    torch.testing.assert_close(resize_pos_embed(table, (4, 4), (4, 4)), table)
    bigger = resize_pos_embed(table, (4, 4), (6, 5), num_prefix_tokens=1)
    assert bigger.shape == (1, 1 + 30, 8)
    torch.testing.assert_close(bigger[:, :1], table[:, :1])
    constant = torch.ones(1, 2 + 4, 3)
    torch.testing.assert_close(resize_pos_embed(constant, (2, 2), (3, 3), num_prefix_tokens=2), torch.ones(1, 11, 3))
    with pytest.raises(ValueError, match=r"\(1, 17, D\)"):
        resize_pos_embed(torch.randn(1, 16, 8), (4, 4), (6, 6))
