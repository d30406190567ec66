"""RT-DETR's hybrid encoder (ours) and a tiny Hugging Face RT-DETR."""

import pytest
import torch

from vitcourse.models.rtdetr import AIFI, CCFF, HybridEncoder, HybridEncoderConfig, backbone_maps, encoder_latency

TINY = HybridEncoderConfig(in_channels=(12, 20, 28), dim=36, num_heads=3, mlp_dim=37, num_blocks=1)


def test_hybrid_encoder_shapes_and_backward():
    encoder = HybridEncoder(TINY)
    maps = backbone_maps(TINY, 96, batch_size=2)
    assert [m.shape[-1] for m in maps] == [12, 6, 3]
    outs = encoder(maps)
    assert [tuple(o.shape) for o in outs] == [(2, 36, 12, 12), (2, 36, 6, 6), (2, 36, 3, 3)]
    sum(o.sum() for o in outs).backward()
    assert encoder.aifi["2"].layers[0].self_attn.qkv.weight.grad is not None
    assert list(encoder.aifi) == ["2"]  # RT-DETR: attention on S5 only


def test_aifi_is_attention_over_the_whole_map():
    aifi = AIFI(8, 2, 16).eval()
    x = torch.randn(1, 8, 4, 5)
    y = aifi(x)
    x2 = x.clone()
    x2[..., 0, 0] += 1.0  # one cell changes: every output cell may change
    assert (aifi(x2) - y).abs().amax(dim=1).gt(1e-6).all()


def test_ccff_fuses_across_scales():
    ccff = CCFF(8, num_levels=3, num_blocks=1).eval()
    maps = [torch.randn(1, 8, 8, 8), torch.randn(1, 8, 4, 4), torch.randn(1, 8, 2, 2)]
    outs = ccff(maps)
    maps[2] = maps[2] + 1.0  # the coarsest map reaches the finest output (top-down path)
    assert (ccff(maps)[0] - outs[0]).abs().max() > 1e-4


def test_encoder_latency_reports_both_designs():
    result = encoder_latency(TINY, 96, repeats=1)
    assert result["tokens_s5"] == 9 and result["tokens_all"] == 144 + 36 + 9
    assert result["s5_cpu_seconds"] > 0 and result["all_cpu_seconds"] > 0 and result["cut"] < 1


def test_wrong_number_of_maps_is_explained():
    with pytest.raises(ValueError, match="S3, S4, S5"):
        HybridEncoder(TINY)(backbone_maps(TINY, 96)[:2])


@pytest.mark.slow
def test_hugging_face_tiny_rtdetr_runs_offline():
    from vitcourse.hub.rtdetr import tiny_rtdetr

    model = tiny_rtdetr((2,))
    out = model(pixel_values=torch.rand(1, 3, 128, 128))
    assert out.logits.shape == (1, 30, 8) and out.pred_boxes.shape == (1, 30, 4)
    assert model.config.encode_proj_layers == [2]
