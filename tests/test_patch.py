import logging

import pytest
import torch

from vitcourse.layers import PatchEmbedding, patchify, patchify_einops, unpatchify, unpatchify_einops


@pytest.mark.parametrize("shape,patch", [((2, 3, 32, 48), 16), ((1, 1, 30, 30), 2), ((3, 4, 14, 21), 7)])
def test_patchify_shape_and_round_trip(shape, patch):
    images = torch.randn(shape)
    B, C, H, W = shape
    patches = patchify(images, patch)
    assert patches.shape == (B, (H // patch) * (W // patch), patch * patch * C)
    assert torch.equal(unpatchify(patches, patch, (H // patch, W // patch), C), images)


@pytest.mark.parametrize("shape,patch", [((2, 3, 32, 48), 16), ((1, 5, 30, 30), 2), ((3, 4, 14, 21), 7)])
def test_manual_and_einops_agree(shape, patch):
    images = torch.randn(shape)
    _, C, H, W = shape
    manual = patchify(images, patch)
    assert torch.equal(manual, patchify_einops(images, patch))
    grid = (H // patch, W // patch)
    assert torch.equal(unpatchify(manual, patch, grid, C), unpatchify_einops(manual, patch, grid, C))


def test_patchify_raster_order_and_layout():
    # A 2-channel 4x4 image whose value encodes (channel, row, col).
    c, r, w = torch.meshgrid(torch.arange(2), torch.arange(4), torch.arange(4), indexing="ij")
    image = (100 * c + 10 * r + w).float()[None]
    patches = patchify(image, 2)  # (1, 4, 8)
    # Patch 1 is the top-right one; its first pixel is (row 0, col 2), channel 0 then 1.
    assert patches[0, 1, :2].tolist() == [2.0, 102.0]
    # Patch 2 starts the second row of patches: pixel (2, 0).
    assert patches[0, 2, 0].item() == 20.0


def test_patchify_rejects_bad_input():
    with pytest.raises(ValueError, match="not divisible"):
        patchify(torch.randn(1, 3, 30, 32), 16)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        patchify(torch.randn(3, 32, 32), 16)
    with pytest.raises(ValueError, match="expected patches"):
        unpatchify(torch.randn(1, 5, 12), 2, (2, 2), 3)


@pytest.mark.parametrize("img_size,patch,chans,dim", [(32, 8, 3, 16), ((30, 42), 6, 1, 37), (28, 7, 4, 5)])
def test_linear_and_conv_agree_with_copied_weights(img_size, patch, chans, dim):
    conv = PatchEmbedding(img_size, patch, chans, dim, method="conv")
    linear = PatchEmbedding(img_size, patch, chans, dim, method="linear").copy_weights_from(conv)
    H, W = (img_size, img_size) if isinstance(img_size, int) else img_size
    images = torch.randn(2, chans, H, W)
    out = conv(images)
    assert out.shape == (2, (H // patch) * (W // patch), dim)
    torch.testing.assert_close(linear(images), out, rtol=1e-5, atol=1e-5)
    # And back the other way, from an independently initialised linear layer.
    linear2 = PatchEmbedding(img_size, patch, chans, dim, method="linear")
    conv2 = PatchEmbedding(img_size, patch, chans, dim, method="conv").copy_weights_from(linear2)
    torch.testing.assert_close(conv2(images), linear2(images), rtol=1e-5, atol=1e-5)


def test_size_that_does_not_divide_names_sizes_and_suggests_pad():
    with pytest.raises(ValueError) as info:
        PatchEmbedding(900, 64, 3, 8)
    message = str(info.value)
    assert "900x900" in message and "patch_size=64" in message and "pad=True" in message


def test_pad_true_pads_and_says_how_much(caplog):
    with caplog.at_level(logging.INFO, logger="vitcourse.layers.patch"):
        embed = PatchEmbedding((900, 600), 64, 3, 8, pad=True)
    assert embed.padding == (60, 40)  # 900 -> 960, 600 -> 640
    assert embed.grid_size == (15, 10) and embed.num_patches == 150
    assert "60 rows" in caplog.text and "40 columns" in caplog.text
    assert "padding=(60, 40)" in repr(embed)
    out = embed(torch.randn(2, 3, 900, 600))
    assert out.shape == (2, 150, 8)


def test_padding_is_zeros_at_bottom_right():
    conv = PatchEmbedding(6, 4, 1, 3, method="conv", pad=True)
    linear = PatchEmbedding(6, 4, 1, 3, method="linear", pad=True).copy_weights_from(conv)
    images = torch.randn(1, 1, 6, 6)
    padded = torch.nn.functional.pad(images, (0, 2, 0, 2))
    exact = PatchEmbedding(8, 4, 1, 3, method="conv").copy_weights_from(conv)
    torch.testing.assert_close(conv(images), exact(padded))
    torch.testing.assert_close(linear(images), exact(padded), rtol=1e-5, atol=1e-5)


def test_forward_rejects_wrong_image():
    embed = PatchEmbedding(32, 8, 3, 16)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        embed(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="method"):
        PatchEmbedding(32, 8, 3, 16, method="dense")


def test_gradients_reach_both_methods():
    for method in ("conv", "linear"):
        embed = PatchEmbedding(16, 4, 3, 8, method=method)
        embed(torch.randn(2, 3, 16, 16)).sum().backward()
        assert embed.proj.weight.grad is not None and embed.proj.weight.grad.abs().sum() > 0
