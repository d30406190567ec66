"""The book's figures draw what they claim: right data, right order, clear errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vitcourse.viz import attention_memory_figure, plot_attention_overlay, plot_encoder_block  # noqa: E402


def test_attention_overlay_lays_the_weights_on_the_patch_grid():
    image = torch.rand(3, 30, 45)  # a 2x3 grid of 15-px patches, not square on purpose
    weights = torch.softmax(torch.randn(6), dim=0)
    ax = plot_attention_overlay(image, weights, grid_size=(2, 3), title="q")
    photo, overlay = ax.get_images()
    assert photo.get_array().shape == (30, 45, 3)
    np.testing.assert_allclose(overlay.get_array(), weights.reshape(2, 3).numpy())
    assert overlay.get_extent() == [0, 45, 30, 0]  # the 2x3 map covers the whole picture
    assert overlay.get_clim() == (0.0, pytest.approx(weights.max().item()))  # 0 means "no attention"
    plt.close("all")


def test_attention_overlay_rejects_a_row_of_the_wrong_length():
    with pytest.raises(ValueError, match="expected 6 weights for a 2x3 grid, got 7"):
        plot_attention_overlay(torch.rand(3, 30, 45), torch.rand(7), grid_size=(2, 3))


def test_attention_memory_figure_reproduces_the_slide_numbers():
    fig = attention_memory_figure([128, 224], patch_size=16, layers=48, heads=16, reference_bytes=80e9)
    pixels, patches = fig.data
    assert pixels.y[0] == 768 * 1024**3  # R = 128: 768 GiB of attention matrices
    assert patches.y[1] == 196**2 * 48 * 16 * 4  # 224 px, 16-px patches: 196 tokens
    assert pixels.customdata[0][0] == "16\u202f384"  # 128 × 128 tokens, thin-space thousands (ESTILO)
    assert fig.layout.yaxis.type == "log"
    assert len(fig.layout.shapes) == 1  # the reference line


def test_attention_memory_figure_pads_sides_that_do_not_divide():
    fig = attention_memory_figure([100], patch_size=16, layers=1, heads=1, bytes_per_value=1)
    assert fig.data[1].y[0] == 49**2  # ceil(100 / 16) = 7 -> 49 tokens
    with pytest.raises(ValueError, match="positive image sizes"):
        attention_memory_figure([0, 32])


@pytest.mark.parametrize(
    ("norm_first", "order"),
    [
        (True, ["LayerNorm", "Multi-Head\nAttention", "LayerNorm", "MLP"]),
        (False, ["Multi-Head\nAttention", "LayerNorm", "MLP", "LayerNorm"]),
    ],
)
def test_encoder_diagram_follows_the_block(norm_first, order):
    ax = plot_encoder_block(norm_first=norm_first)
    boxes = sorted(
        (text.get_position()[1], text.get_text())
        for text in ax.texts
        if text.get_text() in ("LayerNorm", "Multi-Head\nAttention", "MLP")
    )
    assert [label for _, label in boxes] == order  # bottom to top, as the data flows
    assert sum(text.get_text() == "+" for text in ax.texts) == 2  # two residual sums
    plt.close("all")


def test_position_similarity_slider_shows_each_patch_and_marks_it():
    from vitcourse.layers import sincos_2d_encoding
    from vitcourse.viz import cosine_similarity_matrix, position_similarity_figure

    grid_h, grid_w = 3, 5  # not square on purpose
    encoding = sincos_2d_encoding(grid_h, grid_w, dim=16)
    fig = position_similarity_figure(encoding, grid_size=(grid_h, grid_w))
    similarity = cosine_similarity_matrix(encoding)
    assert len(fig.data) == 2 * grid_h * grid_w
    position = 7  # row 1, column 2
    step = fig.layout.sliders[0].steps[position]
    visible = [i for i, shown in enumerate(step.args[0]["visible"]) if shown]
    heatmap, marker = (fig.data[i] for i in visible)
    np.testing.assert_allclose(heatmap.z, similarity[position].reshape(grid_h, grid_w).numpy())
    assert (marker.x[0], marker.y[0]) == (2, 1)
    assert heatmap.zmin == pytest.approx(float(similarity.min()))  # the colour scale follows the data
    with pytest.raises(ValueError, match="has 12 cells but the encoding has 15 rows"):
        position_similarity_figure(encoding, grid_size=(3, 4))
