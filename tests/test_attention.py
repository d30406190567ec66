import math

import pytest
import torch
from torch import nn

from vitcourse.layers import EncoderBlock, MultiHeadAttention, causal_mask, scaled_dot_product_attention


def copy_to_torch_mha(ours: MultiHeadAttention) -> nn.MultiheadAttention:
    """An nn.MultiheadAttention computing the same function as ``ours``."""
    ref = nn.MultiheadAttention(ours.embed_dim, ours.num_heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    return ref.eval()


def test_manual_attention_is_the_formula():
    q, k, v = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 3)
    out, weights = scaled_dot_product_attention(q, k, v)
    expected_weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(weights, expected_weights)
    torch.testing.assert_close(out, expected_weights @ v)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5))


def test_manual_attention_matches_torch_sdpa_with_masks():
    q, k, v = torch.randn(2, 3, 6, 4), torch.randn(2, 3, 9, 4), torch.randn(2, 3, 9, 4)
    bool_mask = torch.rand(6, 9) > 0.3
    bool_mask[:, 0] = True  # no row fully masked
    float_mask = torch.randn(6, 9)
    for mask in (None, bool_mask, float_mask):
        ours, _ = scaled_dot_product_attention(q, k, v, mask)
        ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match="d_k"):
        scaled_dot_product_attention(torch.randn(2, 3, 4), torch.randn(2, 3, 5), torch.randn(2, 3, 5))


@pytest.mark.parametrize("dim,heads,tokens", [(36, 3, 7), (32, 4, 5), (8, 1, 1)])
def test_self_attention_equals_torch_mha(dim, heads, tokens):
    ours = MultiHeadAttention(dim, heads).eval()
    ref = copy_to_torch_mha(ours)
    x = torch.randn(2, tokens, dim)
    expected, expected_weights = ref(x, x, x, need_weights=True, average_attn_weights=False)
    out, weights = ours(x, return_attention=True)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weights, expected_weights, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)


def test_cross_attention_equals_torch_mha():
    ours = MultiHeadAttention(36, 3).eval()
    ref = copy_to_torch_mha(ours)
    x, context = torch.randn(2, 7, 36), torch.randn(2, 11, 36)
    expected, _ = ref(x, context, context)
    torch.testing.assert_close(ours(x, context=context), expected, rtol=1e-5, atol=1e-5)
    out, weights = ours(x, context=context, return_attention=True)
    assert weights.shape == (2, 3, 7, 11)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_masks_match_torch_mha():
    ours = MultiHeadAttention(36, 3).eval()
    ref = copy_to_torch_mha(ours)
    x, context = torch.randn(2, 7, 36), torch.randn(2, 11, 36)
    # Self-attention, causal. nn.MultiheadAttention's bool mask means "blocked": invert ours.
    mask = causal_mask(7)
    expected, _ = ref(x, x, x, attn_mask=~mask)
    torch.testing.assert_close(ours(x, mask=mask), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours(x, mask=mask, return_attention=True)[0], expected, rtol=1e-5, atol=1e-5)
    # Cross-attention with a per-sample key padding mask, given as (B, Nq, Nk).
    keep = torch.ones(2, 11, dtype=torch.bool)
    keep[1, 8:] = False
    expected, _ = ref(x, context, context, key_padding_mask=~keep)
    mask3 = keep[:, None, :].expand(2, 7, 11)
    torch.testing.assert_close(ours(x, context=context, mask=mask3), expected, rtol=1e-5, atol=1e-5)
    out, weights = ours(x, context=context, mask=mask3, return_attention=True)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert weights[1, :, :, 8:].abs().max() == 0


def test_fused_path_equals_manual_path():
    mha = MultiHeadAttention(36, 3).eval()
    x = torch.randn(3, 7, 36)
    for mask in (None, causal_mask(7), torch.randn(7, 7)):
        fused = mha(x, mask=mask)
        manual, _ = mha(x, mask=mask, return_attention=True)
        torch.testing.assert_close(fused, manual, rtol=1e-5, atol=1e-5)


def test_causal_mask_blocks_the_future():
    mha = MultiHeadAttention(36, 3).eval()
    x = torch.randn(1, 7, 36)
    mask = causal_mask(7)
    out, weights = mha(x, mask=mask, return_attention=True)
    assert torch.all(weights.triu(diagonal=1) == 0)
    # Changing a future token leaves earlier outputs untouched.
    x2 = x.clone()
    x2[0, 5:] = torch.randn(2, 36)
    out2 = mha(x2, mask=mask)
    torch.testing.assert_close(out2[0, :5], out[0, :5], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out2[0, 5:], out[0, 5:])


def test_samples_in_a_batch_do_not_mix():
    # The bug of the original TP2 (an encoder built batch_first=False): sample 0's
    # output must not depend on sample 1.
    mha = MultiHeadAttention(36, 3).eval()
    x = torch.randn(2, 7, 36)
    alone = mha(x[:1])
    x[1] = torch.randn(7, 36)
    torch.testing.assert_close(mha(x)[:1], alone, rtol=1e-5, atol=1e-5)


def test_bad_sizes_are_explained():
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        MultiHeadAttention(36, 5)
    mha = MultiHeadAttention(36, 3)
    with pytest.raises(ValueError, match=r"\(B, N, 36\)"):
        mha(torch.randn(7, 36))
    with pytest.raises(ValueError, match="batch size"):
        mha(torch.randn(2, 7, 36), context=torch.randn(3, 5, 36))


def test_no_qkv_bias_and_dropout_in_training():
    mha = MultiHeadAttention(16, 2, qkv_bias=False, dropout=0.5)
    assert mha.qkv.bias is None
    x = torch.randn(2, 5, 16)
    mha.train()
    out, weights = mha(x, context=torch.randn(2, 4, 16), return_attention=True)
    assert out.shape == (2, 5, 16) and weights.shape == (2, 2, 5, 4)
    mha(x).sum().backward()
    assert mha.qkv.weight.grad is not None


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_block_shapes_grads_and_attention(norm_first):
    block = EncoderBlock(36, 3, mlp_ratio=37 / 36, dropout=0.1, drop_path=0.1, norm_first=norm_first)
    assert block.mlp.fc1.out_features == 37
    x = torch.randn(2, 7, 36, requires_grad=True)
    out, weights = block(x, return_attention=True)
    assert out.shape == (2, 7, 36) and weights.shape == (2, 3, 7, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    block.eval()
    torch.testing.assert_close(block(x), block(x, return_attention=True)[0], rtol=1e-5, atol=1e-5)


def test_pre_norm_block_is_residual():
    block = EncoderBlock(16, 2).eval()
    with torch.no_grad():
        for p in (block.attn.proj.weight, block.attn.proj.bias, block.mlp.fc2.weight, block.mlp.fc2.bias):
            p.zero_()
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(block(x), x)
