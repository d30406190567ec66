"""Attention rollout and the checks against object masks, on cases small enough to compute by hand."""

import pytest
import torch

from vitcourse.explain import attention_rollout, cls_attention, mass_inside, patch_coverage, rollout_cls_map
from vitcourse.models import create_model


def one_head(*rows):
    """A (B=1, h=1, T, T) attention tensor from its rows."""
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def test_one_layer_with_residual_is_half_attention_half_identity():
    attention = one_head([0.5, 0.5], [0.5, 0.5])
    rollout = attention_rollout([attention])
    torch.testing.assert_close(rollout[0], torch.tensor([[0.75, 0.25], [0.25, 0.75]]))


def test_layers_compose_first_to_last():
    # layer 1: everyone reads token 0; layer 2: everyone reads token 1, which now holds token 0
    first = one_head([1.0, 0.0], [1.0, 0.0])
    second = one_head([0.0, 1.0], [0.0, 1.0])
    plain = attention_rollout([first, second], residual=False)
    torch.testing.assert_close(plain[0], torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    # with residuals: Â1 = [[1, 0], [.5, .5]], Â2 = [[.5, .5], [0, 1]], rollout = Â2 Â1
    mixed = attention_rollout([first, second])
    torch.testing.assert_close(mixed[0], torch.tensor([[0.75, 0.25], [0.5, 0.5]]))
    reversed_order = attention_rollout([second, first])
    assert not torch.allclose(mixed, reversed_order)  # the order of the layers matters


def test_identity_attention_rolls_out_to_the_identity_and_stacked_input_works():
    eye = torch.eye(3).expand(2, 4, 3, 3)  # (B, h, T, T)
    torch.testing.assert_close(attention_rollout([eye, eye]), torch.eye(3).expand(2, 3, 3))
    torch.testing.assert_close(attention_rollout(torch.stack([eye, eye])), attention_rollout([eye, eye]))


def test_head_fusions():
    heads = torch.stack([torch.eye(2), torch.eye(2).flip(0)])[None]  # (1, 2, 2, 2): "self" and "other"
    torch.testing.assert_close(attention_rollout([heads], head_fusion="mean", residual=False)[0], torch.full((2, 2), 0.5))
    torch.testing.assert_close(attention_rollout([heads], head_fusion="max", residual=False)[0], torch.full((2, 2), 0.5))
    # min over the heads is all zero; the residual alone remains
    torch.testing.assert_close(attention_rollout([heads], head_fusion="min")[0], torch.eye(2))
    with pytest.raises(ValueError, match="head_fusion"):
        attention_rollout([heads], head_fusion="median")


def test_discard_drops_each_rows_weakest_links_but_never_the_diagonal():
    attention = one_head([0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1])
    rollout = attention_rollout([attention], discard_ratio=0.34, residual=False)  # one entry per row
    expected = torch.tensor([[0.2 / 0.7, 0.5 / 0.7, 0.0], [0.0, 0.1 / 0.9, 0.8 / 0.9], [0.6 / 0.7, 0.0, 0.1 / 0.7]])
    torch.testing.assert_close(rollout[0], expected)
    untouched = attention_rollout([attention], discard_ratio=0.2, residual=False)  # int(3 * 0.2) = 0
    torch.testing.assert_close(untouched[0], attention[0, 0])
    with pytest.raises(ValueError, match="discard_ratio"):
        attention_rollout([attention], discard_ratio=1.0)


def test_rollout_of_a_real_vit_has_rows_summing_to_one():
    torch.manual_seed(0)
    model = create_model("vit_pico_patch2_8").eval()
    with torch.no_grad():
        _, attentions = model(torch.randn(3, 1, 8, 8), return_attention=True)
    rollout = attention_rollout(attentions, discard_ratio=0.5)
    assert rollout.shape == (3, 17, 17)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(3, 17))
    cls_map = rollout_cls_map(attentions)
    assert cls_map.shape == (3, 16) and (cls_map >= 0).all()
    torch.testing.assert_close(cls_map.sum(-1), torch.ones(3))
    maps = cls_attention(attentions)
    assert maps.shape == (3, 2, 2, 16)  # (B, L, h, N)
    torch.testing.assert_close(maps[1, 0, 1], attentions[0][1, 1, 0, 1:])


def test_cls_attention_of_a_deit_skips_both_prefix_tokens():
    attention = torch.rand(1, 2, 1, 6, 6).softmax(-1)  # (L, B, h, T, T) with [CLS], [DIST] and 4 patches
    maps = cls_attention(attention, num_prefix_tokens=2)
    assert maps.shape == (2, 1, 1, 4)
    torch.testing.assert_close(maps[0, 0, 0], attention[0, 0, 0, 0, 2:])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: attention_rollout([]), "no attention weights"),
        (lambda: attention_rollout([torch.rand(2, 3, 3)]), r"\(B, h, T, T\)"),
        (lambda: cls_attention([torch.rand(1, 1, 3, 3)], num_prefix_tokens=3), "num_prefix_tokens"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_patch_coverage_counts_the_mask_per_patch():
    mask = torch.zeros(4, 6, dtype=torch.bool)
    mask[0:2, 0:2] = True  # all of patch 0
    mask[2, 4:6] = True  # half of patch 5
    coverage = patch_coverage(mask, 2)
    torch.testing.assert_close(coverage, torch.tensor([1.0, 0, 0, 0, 0, 0.5]))
    assert patch_coverage(mask[None].expand(3, 4, 6), 2).shape == (3, 6)
    with pytest.raises(ValueError, match="multiple of patch_size"):
        patch_coverage(mask, 4)


def test_mass_inside_against_uniform_and_perfect_maps():
    coverage = torch.tensor([1.0, 0.5, 0.0, 0.0])
    assert mass_inside(torch.ones(4), coverage).item() == pytest.approx(1.5 / 4)  # the object's share of the area
    assert mass_inside(torch.tensor([3.0, 0, 0, 0]), coverage).item() == pytest.approx(1.0)
    assert mass_inside(torch.tensor([0, 0, 1.0, 1.0]), coverage).item() == pytest.approx(0.0)
    batch = mass_inside(torch.ones(2, 4), coverage)
    assert batch.shape == (2,)
    with pytest.raises(ValueError, match="same patches"):
        mass_inside(torch.ones(3), coverage)
    with pytest.raises(ValueError, match="non-negative"):
        mass_inside(torch.tensor([1.0, -1, 0, 0]), coverage)
