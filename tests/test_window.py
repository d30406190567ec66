"""Swin's pieces against brute-force references: windows, relative positions, the
shifted-window mask, patch merging, and the whole model against timm."""

import itertools
import math

import pytest
import torch

from vitcourse.layers import (
    EncoderBlock,
    MultiHeadAttention,
    PatchMerging,
    WindowAttention,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)
from vitcourse.models import Swin, SwinBlock, SwinConfig, create_model

# -- windows ----------------------------------------------------------------------------


@pytest.mark.parametrize("height,width,window", [(8, 8, 4), (6, 9, 3), (14, 7, 7), (5, 5, 1)])
def test_window_partition_round_trip_and_layout(height, width, window):
    x = torch.randn(2, height, width, 5)
    windows = window_partition(x, window)
    num_windows = (height // window) * (width // window)
    assert windows.shape == (2, num_windows, window * window, 5)
    torch.testing.assert_close(window_reverse(windows, window, height, width), x, rtol=0, atol=0)
    # brute force: token t of window w is pixel (row of w * M + t // M, col of w * M + t % M)
    per_row = width // window
    for w, t in itertools.product(range(num_windows), range(window * window)):
        row = (w // per_row) * window + t // window
        col = (w % per_row) * window + t % window
        assert torch.equal(windows[:, w, t], x[:, row, col])


def test_window_size_must_divide():
    with pytest.raises(ValueError, match=r"window_size=4 does not divide the 6x8 grid.*\[1, 2\]"):
        window_partition(torch.randn(1, 6, 8, 3), 4)
    with pytest.raises(ValueError, match=r"expected windows shaped \(B, 4, 16, C\)"):
        window_reverse(torch.randn(1, 3, 16, 2), 4, 8, 8)


# -- relative positions -----------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 2, 3, 7])
def test_relative_position_index_brute_force(window):
    index = relative_position_index(window)
    side = 2 * window - 1
    assert index.shape == (window**2, window**2)
    for i, j in itertools.product(range(window**2), repeat=2):
        dy = i // window - j // window
        dx = i % window - j % window
        assert index[i, j] == (dy + window - 1) * side + (dx + window - 1)
    assert set(index.flatten().tolist()) == set(range(side**2))  # every table row is used


def test_relative_bias_depends_only_on_the_offset():
    attn = WindowAttention(8, 2, window_size=3)
    bias = attn.relative_position_bias()  # (h, 9, 9)
    assert bias.shape == (2, 9, 9)
    # pairs with the same (dy, dx) share a bias: (0,0)->(1,1) and (1,1)->(2,2) are both (-1, -1)
    torch.testing.assert_close(bias[:, 0, 4], bias[:, 4, 8])
    torch.testing.assert_close(bias[:, 0, 0], bias[:, 4, 4])


# -- the shifted-window mask ------------------------------------------------------------


def brute_force_allowed(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """(nW, M*M, M*M): may token i attend to token j, for the windows of the rolled map?

    Token (r, c) of the rolled map came from image position ((r + s) % H, (c + s) % W).
    Two tokens belong together iff the shifted partition of the *image* (window borders
    at s, s + M, s + 2M, …; no wrap-around, so the border windows are partial) puts
    them in the same window.
    """
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    source_r, source_c = (rows + shift) % height, (cols + shift) % width
    # windows of the shifted partition: [0, s), [s, s+M), [s+M, s+2M), …: index floor((p - s) / M) + 1
    region_r = torch.div(source_r + window - shift, window, rounding_mode="floor")
    region_c = torch.div(source_c + window - shift, window, rounding_mode="floor")
    region = (region_r * (width + 1) + region_c).float()[None, :, :, None]  # (1, H, W, 1)
    labels = window_partition(region, window)[0, :, :, 0]  # (nW, M*M)
    return labels[:, :, None] == labels[:, None, :]


@pytest.mark.parametrize("height,width,window,shift", [(8, 8, 4, 2), (12, 8, 4, 1), (14, 14, 7, 3), (6, 6, 3, 1)])
def test_shifted_window_mask_matches_brute_force(height, width, window, shift):
    mask = shifted_window_mask(height, width, window, shift)
    allowed = brute_force_allowed(height, width, window, shift)
    assert mask.shape == allowed.shape
    assert torch.equal(mask == 0, allowed)
    assert torch.isneginf(mask[~allowed]).all()
    # only the last row and column of windows hold wrapped-around tokens
    per_row = width // window
    interior = [w for w in range(mask.shape[0]) if w % per_row != per_row - 1 and w // per_row != height // window - 1]
    assert (mask[interior] == 0).all()


def test_shift_must_be_inside_the_window():
    with pytest.raises(ValueError, match="shift_size must be in"):
        shifted_window_mask(8, 8, 4, 4)


def manual_window_block(block: SwinBlock, x: torch.Tensor) -> torch.Tensor:
    """A Swin block by brute force: global attention over the *un-rolled* image, a token
    attending only to tokens of its own (shifted) window, with the relative bias of their
    offset. No roll, no partition, no mask tensor of the model."""
    B, H, W, C = x.shape
    M, s = block.window_size, block.shift_size
    attn = block.attn
    h = attn.num_heads
    rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()  # (HW,)
    region_r = torch.div(rows + (M - s) % M, M, rounding_mode="floor") if s else rows // M
    region_c = torch.div(cols + (M - s) % M, M, rounding_mode="floor") if s else cols // M
    same = (region_r[:, None] == region_r[None, :]) & (region_c[:, None] == region_c[None, :])  # (HW, HW)
    dy = rows[:, None] - rows[None, :] + M - 1
    dx = cols[:, None] - cols[None, :] + M - 1
    table_index = (dy * (2 * M - 1) + dx).clamp(0, (2 * M - 1) ** 2 - 1)  # only used where `same`
    bias = attn.relative_position_bias_table[table_index].permute(2, 0, 1)  # (h, HW, HW)

    tokens = block.norm1(x).reshape(B, H * W, C)
    q, k, v = attn.qkv(tokens).chunk(3, dim=-1)
    q, k, v = (t.view(B, H * W, h, C // h).transpose(1, 2) for t in (q, k, v))  # (B, h, HW, hd)
    scores = q @ k.transpose(-2, -1) / math.sqrt(C // h) + bias
    scores = scores.masked_fill(~same, float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, H * W, C)
    x = x + attn.proj(out).view(B, H, W, C)
    return x + block.mlp(block.norm2(x))


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("resolution,window", [(8, 4), (6, 3), (14, 7)])
def test_swin_block_equals_brute_force_window_attention(shifted, resolution, window):
    block = SwinBlock(12, 3, resolution, window, shifted=shifted).eval()
    with torch.no_grad():
        block.attn.relative_position_bias_table.normal_()  # a bias large enough to matter
    assert block.shift_size == (window // 2 if shifted else 0)
    x = torch.randn(2, resolution, resolution, 12)
    with torch.no_grad():
        torch.testing.assert_close(block(x), manual_window_block(block, x), rtol=1e-4, atol=1e-5)


def test_shifted_attention_never_crosses_regions():
    """With the mask, no token attends to one that the roll brought from another region."""
    block = SwinBlock(8, 2, resolution=8, window_size=4, shifted=True).eval()
    x = torch.randn(2, 8, 8, 8)
    _, weights = block(x, return_attention=True)
    assert weights.shape == (2, 4, 2, 16, 16)
    allowed = brute_force_allowed(8, 8, 4, 2)[None, :, None]  # (1, nW, 1, N, N)
    assert (weights.masked_select(~allowed) == 0).all()
    assert (weights.masked_select(allowed.expand_as(weights)) > 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 2, 16))
    # and without the mask (a rolled map attended naively) tokens would cross regions
    block.attn_mask = None
    _, leaky = block(x, return_attention=True)
    assert (leaky.masked_select(~allowed) > 0).all()


def test_window_attention_on_one_window_is_global_attention():
    """A grid that is exactly one window, zero relative bias: W-MSA is plain MSA."""
    window_attn = WindowAttention(12, 3, window_size=4).eval()
    with torch.no_grad():
        window_attn.relative_position_bias_table.zero_()
    global_attn = MultiHeadAttention(12, 3).eval()
    assert not global_attn.load_state_dict(window_attn.state_dict(), strict=False).missing_keys
    x = torch.randn(2, 4, 4, 12)
    out, weights = window_attn(window_partition(x, 4), return_attention=True)  # (2, 1, 16, 12)
    expected, expected_weights = global_attn(x.reshape(2, 16, 12), return_attention=True)
    torch.testing.assert_close(out[:, 0], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weights[:, 0], expected_weights, rtol=1e-5, atol=1e-5)
    # and the fused path agrees with the manual one
    torch.testing.assert_close(window_attn(window_partition(x, 4)), out, rtol=1e-5, atol=1e-5)


def test_swin_block_on_one_window_is_an_encoder_block():
    block = SwinBlock(12, 3, resolution=4, window_size=7, shifted=True).eval()  # 4 <= 7: one window, no shift
    assert (block.window_size, block.shift_size) == (4, 0)
    with torch.no_grad():
        block.attn.relative_position_bias_table.zero_()
    encoder = EncoderBlock(12, 3, norm_eps=1e-5).eval()
    assert not encoder.load_state_dict(block.state_dict(), strict=False).missing_keys
    x = torch.randn(2, 4, 4, 12)
    torch.testing.assert_close(block(x).reshape(2, 16, 12), encoder(x.reshape(2, 16, 12)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,window", [(8, 4), (14, 7)])
def test_window_attention_costs_what_the_paper_says(size, window):
    """Multiply-adds counted while running equal Ω(W-MSA) = 4hwC² + 2M²hwC, and the
    global layer's equal Ω(MSA) = 4hwC² + 2(hw)²C (the formulas of vitcourse.complexity)."""
    from torch.utils.flop_counter import FlopCounterMode

    from vitcourse.complexity import msa_flops, wmsa_flops

    C = 12
    x = torch.randn(1, size, size, C)
    with FlopCounterMode(display=False) as counter:
        WindowAttention(C, 3, window)(window_partition(x, window))
    assert counter.get_total_flops() // 2 == wmsa_flops(size, size, C, window)
    with FlopCounterMode(display=False) as counter:
        MultiHeadAttention(C, 3)(x.reshape(1, size * size, C), return_attention=True)
    assert counter.get_total_flops() // 2 == msa_flops(size, size, C)


# -- patch merging ------------------------------------------------------------------------


def test_patch_merging_brute_force():
    merge = PatchMerging(3).eval()
    x = torch.randn(2, 6, 4, 3)
    out = merge(x)
    assert out.shape == (2, 3, 2, 6)
    for i, j in itertools.product(range(3), range(2)):
        group = torch.cat([x[:, 2 * i, 2 * j], x[:, 2 * i + 1, 2 * j], x[:, 2 * i, 2 * j + 1], x[:, 2 * i + 1, 2 * j + 1]], -1)
        torch.testing.assert_close(out[:, i, j], merge.reduction(merge.norm(group)))
    with pytest.raises(ValueError, match="even H and W"):
        merge(torch.randn(1, 5, 4, 3))


# -- the whole model ------------------------------------------------------------------------


def test_swin_stage_shapes_and_attention():
    model = create_model("swin_micro_patch2_window4_32").eval()
    x = torch.randn(2, 3, 32, 32)
    logits, attentions = model(x, return_attention=True)
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, model(x), rtol=1e-5, atol=1e-5)
    assert model.forward_features(x).shape == (2, 4, 4, 128)
    # stage grids 16, 8, 4 with M=4: 16, 4 and 1 windows; heads 2, 4, 8
    assert [[tuple(w.shape) for w in stage] for stage in attentions] == [
        [(2, 16, 2, 16, 16)] * 2,
        [(2, 4, 4, 16, 16)] * 2,
        [(2, 1, 8, 16, 16)] * 2,
    ]
    shifts = [[block.shift_size for block in stage.blocks] for stage in model.layers]
    assert shifts == [[0, 2], [0, 2], [0, 0]]  # the last grid is one window: nothing to shift
    for stage in attentions:
        for weights in stage:
            torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_swin_tiny_shapes_on_meta():
    with torch.device("meta"):
        model = create_model("swin_tiny_patch4_window7_224")
        features = model.forward_features(torch.randn(1, 3, 224, 224))
    assert model.config.resolutions == [56, 28, 14, 7]
    assert features.shape == (1, 7, 7, 768)
    assert [stage.blocks[0].attn.relative_position_bias_table.shape for stage in model.layers] == [
        (169, 3), (169, 6), (169, 12), (169, 24)
    ]


def swin_state_dict_to_timm(state):
    renames = {"patch_norm.": "patch_embed.norm.", "head.": "head.fc."}
    out = {}
    for key, value in state.items():
        for ours, theirs in renames.items():
            if key.startswith(ours):
                key = theirs + key[len(ours):]
        out[key] = value
    return out


@pytest.mark.parametrize(
    "config",
    [
        SwinConfig(img_size=32, patch_size=2, num_classes=10, embed_dim=32, depths=(2, 2, 2), num_heads=(2, 4, 8), window_size=4),
        SwinConfig(img_size=56, patch_size=2, num_classes=5, embed_dim=12, depths=(2, 2, 1), num_heads=(1, 2, 4), window_size=7),
    ],
    ids=["micro", "window7"],
)
def test_swin_equals_timm(config):
    pytest.importorskip("timm")
    from timm.models.swin_transformer import SwinTransformer

    model = Swin(config).eval()
    with torch.no_grad():
        for stage in model.layers:
            for block in stage.blocks:
                block.attn.relative_position_bias_table.normal_()
    reference = SwinTransformer(
        img_size=config.img_size, patch_size=config.patch_size, num_classes=config.num_classes,
        embed_dim=config.embed_dim, depths=config.depths, num_heads=config.num_heads,
        window_size=config.window_size,
    ).eval()
    reference.load_state_dict(swin_state_dict_to_timm(model.state_dict()))
    x = torch.randn(2, 3, config.img_size, config.img_size)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)
