import pytest

from vitcourse import complexity as cx


def test_pixels_as_tokens_slide_figure():
    # R = 128: every pixel a token, 48 layers, 16 heads, float32 -> 768 GiB.
    tokens = 128 * 128
    total = cx.attention_memory_bytes(tokens, layers=48, heads=16, bytes_per_value=4)
    assert total == 768 * 1024**3
    assert cx.format_bytes(total) == "768 GiB"


def test_patches_slide_figure():
    tokens = cx.num_patches(224, 16)
    assert tokens == 196
    assert cx.attention_entries(tokens) == 38_416
    size = cx.attention_memory_bytes(tokens)
    assert size == 153_664 and cx.format_bytes(size) == "150.1 KiB"
    assert cx.sequence_length(224, 16) == 197


def test_swin_grid_entries():
    assert cx.attention_entries(56 * 56) == 9_834_496  # "9.8 M entries"


def test_omega_formulas():
    h = w = 56
    c = 96
    assert cx.msa_flops(h, w, c) == 4 * h * w * c**2 + 2 * (h * w) ** 2 * c
    assert cx.wmsa_flops(h, w, c, 7) == 4 * h * w * c**2 + 2 * 49 * h * w * c
    # Quadratic versus linear: doubling the side multiplies the attention term by 16 vs 4.
    quad = cx.msa_flops(2 * h, 2 * w, c) - 4 * (2 * h) * (2 * w) * c**2
    assert quad == 16 * (cx.msa_flops(h, w, c) - 4 * h * w * c**2)
    lin = cx.wmsa_flops(2 * h, 2 * w, c) - 4 * (2 * h) * (2 * w) * c**2
    assert lin == 4 * (cx.wmsa_flops(h, w, c) - 4 * h * w * c**2)


def test_num_patches_padding_and_errors():
    assert cx.num_patches(900, 64, pad=True) == 15 * 15
    assert cx.num_patches((900, 600), 64, pad=True) == 150
    with pytest.raises(ValueError, match="pad=True"):
        cx.num_patches(900, 64)


def test_patch_embedding_params_and_format():
    assert cx.patch_embedding_params(16, 3, 768) == 16 * 16 * 3 * 768 + 768
    assert cx.format_bytes(512) == "512 B"
    assert cx.format_bytes(1536) == "1.5 KiB"
    assert cx.format_bytes(153_664, binary=False) == "153.7 KB"
