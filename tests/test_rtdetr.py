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


def _scramble_batch_norms(model: torch.nn.Module) -> None:
    """Non-trivial running statistics and affine weights, so a misplaced norm shows."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                m.weight.normal_(1, 0.1, generator=g)
                m.bias.normal_(0, 0.1, generator=g)


@pytest.mark.slow  # the first import of transformers' RT-DETR
@pytest.mark.parametrize("levels", [(2,), (0, 1, 2)])
def test_hybrid_encoder_equals_hugging_face(levels):
    from vitcourse.hub.rtdetr import hybrid_encoder_from_hf, tiny_rtdetr

    hf = tiny_rtdetr(levels, d_model=36)
    _scramble_batch_norms(hf)
    ours = hybrid_encoder_from_hf(hf)
    images = torch.rand(2, 3, 96, 160)  # S5 is 3 x 5: not square
    with torch.no_grad():
        maps = [m for m, _ in hf.model.backbone(images, torch.ones(2, 96, 160, dtype=torch.long))]
        theirs = hf(pixel_values=images).encoder_last_hidden_state
        mine = ours(maps)
    assert [m.shape for m in mine] == [t.shape for t in theirs]
    for a, b in zip(mine, theirs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_hybrid_encoder_conversion_refuses_what_ours_lacks():
    from vitcourse.hub.mapping import ConversionError
    from vitcourse.hub.rtdetr import hybrid_encoder_from_hf, tiny_rtdetr

    hf = tiny_rtdetr()
    hf.config.normalize_before = True
    with pytest.raises(ConversionError, match="post-norm"):
        hybrid_encoder_from_hf(hf)
    with pytest.raises(ConversionError, match="expected RTDetrForObjectDetection"):
        hybrid_encoder_from_hf(torch.nn.Linear(2, 2))
