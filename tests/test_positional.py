import math

import pytest
import torch

from vitcourse.layers import LearnedPositionalEmbedding, patchify, sincos_2d_encoding, sinusoidal_encoding

# The slide's table: "I am a robot", d = 4, n = 100, to two decimals.
SLIDE_TABLE = [
    [0.00, 1.00, 0.00, 1.00],
    [0.84, 0.54, 0.10, 1.00],
    [0.91, -0.42, 0.20, 0.98],
    [0.14, -0.99, 0.30, 0.96],
]


def test_reproduces_the_slide_table():
    table = sinusoidal_encoding(4, 4, base=100.0)
    assert table.shape == (4, 4)
    rounded = [[round(value, 2) + 0.0 for value in row] for row in table.tolist()]
    assert rounded == SLIDE_TABLE


def test_formula_sin_even_cos_odd():
    N, D = 50, 16
    pe = sinusoidal_encoding(N, D)
    for pos in (0, 7, 49):
        for i in range(D // 2):
            angle = pos / 10000 ** (2 * i / D)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_odd_dim_and_dtype():
    pe = sinusoidal_encoding(10, 5)
    assert pe.shape == (10, 5) and pe.dtype == torch.float32
    assert pe[3, 4].item() == pytest.approx(math.sin(3 / 10000 ** (4 / 5)), abs=1e-6)
    with pytest.raises(ValueError):
        sinusoidal_encoding(0, 4)


def test_sincos_2d_structure():
    gh, gw, D = 3, 5, 16
    pe = sincos_2d_encoding(gh, gw, D)
    assert pe.shape == (gh * gw, D)
    grid = pe.reshape(gh, gw, D)
    # Same row -> same first half; same column -> same second half.
    assert torch.equal(grid[1, 0, : D // 2], grid[1, 4, : D // 2])
    assert torch.equal(grid[0, 2, D // 2 :], grid[2, 2, D // 2 :])
    assert not torch.equal(grid[0, 0], grid[0, 1])
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_2d_encoding(2, 2, 6)


def test_sincos_2d_follows_patchify_raster_order():
    # Row index varies slowest in both, so encoding row k belongs to patch k.
    gh, gw = 2, 3
    pe = sincos_2d_encoding(gh, gw, 8)
    images = torch.arange(gh * gw, dtype=torch.float32).reshape(1, 1, gh, gw)
    order = patchify(images, 1)[0, :, 0].long().tolist()
    assert order == list(range(gh * gw))
    assert torch.equal(pe[order[4], :4], sinusoidal_encoding(gh, 4)[1])


def test_learned_embedding_is_a_parameter_and_adds():
    module = LearnedPositionalEmbedding(10, 6)
    assert [name for name, _ in module.named_parameters()] == ["weight"]
    assert module.weight.shape == (1, 10, 6)
    x = torch.zeros(2, 7, 6)
    out = module(x)
    assert torch.equal(out, module.weight[:, :7].expand(2, 7, 6))
    out.sum().backward()
    assert module.weight.grad[:, :7].abs().sum() > 0 and module.weight.grad[:, 7:].abs().sum() == 0
    with pytest.raises(ValueError, match="L <= 10"):
        module(torch.zeros(1, 11, 6))
