"""SAM: shapes at tiny odd sizes, Hugging Face parity, preset sizes, the attention extension."""

from __future__ import annotations

import pytest
import torch

from vitcourse.hub import ConversionError
from vitcourse.layers import MultiHeadAttention
from vitcourse.models import Sam, SamConfig, create_model
from vitcourse.models.sam import decomposed_relative_bias

TINY = {
    "img_size": 60, "patch_size": 4, "embed_dim": 36, "depth": 3, "num_heads": 3, "mlp_ratio": 50 / 36,
    "window_size": 4, "global_attn_indexes": (1,), "prompt_dim": 24, "mask_in_chans": 8,
    "decoder_heads": 2, "decoder_mlp_dim": 20, "iou_head_hidden_dim": 20,
}


def _tiny_hf(**vision):
    transformers = pytest.importorskip("transformers")
    vc = {"hidden_size": 36, "num_hidden_layers": 3, "num_attention_heads": 3, "mlp_dim": 50, "image_size": 60,
              "patch_size": 4, "window_size": 4, "global_attn_indexes": [1], "output_channels": 24, "num_pos_feats": 12}
    vc.update(vision)
    config = transformers.SamConfig(
        vision_config=vc,
        prompt_encoder_config={"hidden_size": 24, "image_embedding_size": 15, "image_size": 60, "mask_input_channels": 8},
        mask_decoder_config={"hidden_size": 24, "num_attention_heads": 2, "mlp_dim": 20, "iou_head_hidden_dim": 20},
    )
    torch.manual_seed(0)
    model = transformers.SamModel(config).eval()
    with torch.no_grad():  # SAM's own init is near zero: spread the weights so differences show
        for name, p in model.named_parameters():
            norm_weight = "norm" in name and name.endswith("weight")
            p.copy_(torch.randn_like(p) * (0.3 if p.ndim > 1 else 0.1) + float(norm_weight))
    return model


def test_shapes_points_boxes_masks():
    torch.manual_seed(0)
    model = Sam(SamConfig(**TINY)).eval()
    images = torch.randn(2, 3, 60, 60)
    embedding = model.encode_image(images)
    assert embedding.shape == (2, 24, 15, 15)
    points, labels = torch.rand(2, 5, 3, 2) * 60, torch.ones(2, 5, 3, dtype=torch.long)
    masks, iou = model.predict(embedding, points, labels)
    assert masks.shape == (2, 5, 3, 60, 60) and iou.shape == (2, 5, 3)
    boxes = torch.tensor([[[1.0, 2.0, 30.0, 41.0]]]).expand(2, 1, 4)
    masks, iou = model.predict(embedding, boxes=boxes, multimask_output=False)
    assert masks.shape == (2, 1, 1, 60, 60) and iou.shape == (2, 1, 1)
    masks, _ = model.predict(embedding, boxes=boxes, masks=torch.randn(2, 1, 60, 60))
    assert masks.shape == (2, 1, 3, 60, 60)
    assert model.upscale(masks).shape == (2, 1, 3, 60, 60)
    with pytest.raises(ValueError, match="at least one prompt"):
        model.predict(embedding)
    with pytest.raises(ValueError, match="same"):
        model.predict(embedding, points, labels, boxes)


def test_matches_hugging_face_points_boxes_masks():
    from vitcourse.hub import sam_from_hf

    hf = _tiny_hf()
    ours = sam_from_hf(hf).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters())
    torch.manual_seed(1)
    images = torch.randn(2, 3, 60, 60)
    points = torch.rand(2, 3, 2, 2) * 60
    labels = torch.tensor([[[1, 0], [1, 1], [1, -10]]] * 2)
    boxes = torch.tensor([[[3.0, 4, 40, 50], [10, 10, 20, 30], [0, 0, 59, 59]]] * 2)
    mask_prompt = torch.randn(2, 1, 60, 60)
    cases = [
        {"input_points": points, "input_labels": labels},
        {"input_boxes": boxes, "multimask_output": False},
        {"input_points": points, "input_labels": labels, "input_boxes": boxes, "input_masks": mask_prompt},
    ]
    with torch.no_grad():
        for case in cases:
            theirs = hf(pixel_values=images, **case)
            masks, iou = ours(
                images, case.get("input_points"), case.get("input_labels"), case.get("input_boxes"),
                case.get("input_masks"), case.get("multimask_output", True),
            )
            assert theirs.pred_masks.abs().max() > 0.1  # not a degenerate comparison
            torch.testing.assert_close(masks, theirs.pred_masks, atol=1e-4, rtol=0)
            torch.testing.assert_close(iou, theirs.iou_scores, atol=1e-4, rtol=0)


def test_refuses_fourier_size_that_is_not_half_the_channels():
    from vitcourse.hub import sam_from_hf

    with pytest.raises(ConversionError, match="num_pos_feats"):
        sam_from_hf(_tiny_hf(num_pos_feats=8))


@pytest.mark.parametrize(
    ("name", "vision"),
    [
        ("sam_vit_base", {}),
        ("sam_vit_large", {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                               "global_attn_indexes": [5, 11, 17, 23], "mlp_dim": 4096}),
        ("sam_vit_huge", {"hidden_size": 1280, "num_hidden_layers": 32, "num_attention_heads": 16,
                              "global_attn_indexes": [7, 15, 23, 31], "mlp_dim": 5120}),
    ],
)
def test_presets_count_what_hugging_face_counts(name, vision):
    transformers = pytest.importorskip("transformers")
    from vitcourse.hub.sam import sam_config_from_hf

    with torch.device("meta"):
        hf = transformers.SamModel(transformers.SamConfig(vision_config=vision))
        ours = create_model(name)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters())
    assert sam_config_from_hf(hf.config) == ours.config


def test_attention_inner_dim_value_and_query_bias_match_by_hand():
    torch.manual_seed(0)
    attn = MultiHeadAttention(12, 3, inner_dim=6)
    x, ctx, val = torch.randn(2, 5, 12), torch.randn(2, 7, 12), torch.randn(2, 7, 12)
    bias = torch.randn(2, 3, 5, 7)
    out, weights = attn(x, context=ctx, value=val, bias_from_queries=lambda q: bias, return_attention=True)
    fused = attn(x, context=ctx, value=val, bias_from_queries=lambda q: bias)
    w, b = attn.qkv.weight, attn.qkv.bias
    q = (x @ w[:6].T + b[:6]).view(2, 5, 3, 2).transpose(1, 2)
    k = (ctx @ w[6:12].T + b[6:12]).view(2, 7, 3, 2).transpose(1, 2)
    v = (val @ w[12:].T + b[12:]).view(2, 7, 3, 2).transpose(1, 2)
    probs = (q @ k.transpose(-2, -1) / 2**0.5 + bias).softmax(-1)
    expected = attn.proj((probs @ v).transpose(1, 2).reshape(2, 5, 6))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, probs)
    with pytest.raises(ValueError, match="value is for cross-attention"):
        attn(x, value=val)


def test_relative_bias_depends_only_on_offsets():
    torch.manual_seed(0)
    rel_h, rel_w = torch.randn(5, 4), torch.randn(7, 4)
    q = torch.randn(1, 1, 12, 4).expand(1, 1, 12, 4).clone()
    q[:] = q[0, 0, 0]  # the same query everywhere: the bias is a function of (dy, dx) only
    bias = decomposed_relative_bias(q, rel_h, rel_w, 3, 4).view(3, 4, 3, 4)
    torch.testing.assert_close(bias[0, 0, 1, 1], bias[1, 2, 2, 3])
    with pytest.raises(ValueError, match="rows"):
        decomposed_relative_bias(q, rel_h, rel_w, 4, 3)


def test_prompts_fall_inside_their_masks_and_boxes_fit():
    from vitcourse.models.sam.training import centre_point, sample_prompts

    masks = torch.zeros(2, 3, 30, 30, dtype=torch.bool)
    masks[0, 0, 3:9, 4:17] = True
    masks[0, 1, 20:29, 1:5] = True
    masks[0, 2, 10:12, 10:25] = True
    masks[1] = masks[0].flip(-1)
    generator = torch.Generator().manual_seed(0)
    for kind in ("one_point", "three_points"):
        prompts = sample_prompts(masks, kind, generator, train=kind == "three_points")
        xs, ys = prompts["points"].long().unbind(-1)  # (2, 3, N)
        b, p = torch.meshgrid(torch.arange(2), torch.arange(3), indexing="ij")
        assert masks[b[..., None], p[..., None], ys, xs].all()
    boxes = sample_prompts(masks, "box", generator, train=False)["boxes"]
    assert boxes[0, 0].tolist() == [4.0, 3.0, 16.0, 8.0]
    x, y = centre_point(masks[0, 0])  # rows 3-8: the middle rows are the farthest from the border
    assert y in (5.0, 6.0) and 6 <= x <= 14


def test_sam_loss_trains_only_the_best_of_three_masks():
    from vitcourse.models.sam.training import mask_iou, sam_loss

    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:6, 2:6] = 1
    good = (target * 20 - 10).unsqueeze(2)  # (1, 1, 1, 8, 8): the right mask
    logits = torch.cat([good, -good, torch.zeros_like(good)], dim=2).requires_grad_()
    iou_pred = torch.tensor([[[1.0, 0.0, 0.0]]], requires_grad=True)
    loss, parts = sam_loss(logits, iou_pred, target)
    loss.backward()
    assert logits.grad[:, :, 1:].abs().sum() == 0  # the worse masks get no mask gradient
    assert mask_iou(good[:, :, 0], target).item() == 1.0
    assert parts["iou"] == pytest.approx(0.0, abs=1e-6)


def test_nested_click_trains_part_and_whole_on_two_different_masks():
    from vitcourse.models.sam.training import point_alternatives, sam_loss

    whole = torch.zeros(8, 8, dtype=torch.bool)
    whole[1:7, 1:7] = True
    part = torch.zeros(8, 8, dtype=torch.bool)
    part[3:5, 3:5] = True
    other = torch.zeros(8, 8, dtype=torch.bool)
    other[0, 0] = True
    masks = [torch.stack([other, part, whole])]
    targets = torch.stack([part, whole])[None]  # (1, 2, 8, 8): one click on the part, one on the ring
    points = torch.tensor([[[[3.0, 4.0]], [[1.0, 1.0]]]])
    alternative, has = point_alternatives(masks, torch.tensor([0]), targets, points)
    assert has.tolist() == [[True, False]]
    assert torch.equal(alternative[0, 0], whole) and torch.equal(alternative[0, 1], whole)

    # three masks all fitting the part: the pair loss makes one of them learn the whole
    def as_logits(m):
        return m.float() * 20 - 10

    logits = torch.stack([as_logits(part)] * 3)[None, None].expand(1, 2, 3, 8, 8).clone().requires_grad_()
    iou_pred = torch.ones(1, 2, 3, requires_grad=True)
    single, _ = sam_loss(logits, iou_pred, targets.float())
    paired, _ = sam_loss(logits, iou_pred, targets.float(), alternative=alternative.float(), has_alternative=has)
    assert paired > single  # no output is the whole yet
    paired.backward()
    grads = logits.grad[0, 0].flatten(1).abs().sum(1)
    assert (grads > 0).sum() == 2  # the part's mask and the one that must become the whole
    fixed = logits.detach().clone()
    fixed[0, :, 2] = as_logits(whole)
    _, parts = sam_loss(fixed, iou_pred, targets.float(), alternative=alternative.float(), has_alternative=has)
    assert parts["mask"] < 0.01  # one output the part, another the whole: both answers found


def test_mask_nms_keeps_the_best_of_overlapping_masks_and_matching_counts():
    from vitcourse.models.sam import mask_nms, match_masks, stability_score

    masks = torch.zeros(3, 10, 10, dtype=torch.bool)
    masks[0, 0:5, 0:5] = True
    masks[1, 0:5, 0:4] = True  # overlaps mask 0 by 0.8
    masks[2, 6:9, 6:9] = True
    kept = mask_nms(masks, torch.tensor([0.5, 0.9, 0.7]), iou_threshold=0.7)
    assert kept.tolist() == [1, 2]
    reference = torch.zeros(2, 10, 10, dtype=torch.bool)
    reference[0, 0:5, 0:5] = True
    reference[1, 0:2, 8:10] = True  # found by nothing
    result = match_masks(masks[kept], reference)
    assert result == {"found": 1, "reference": 2, "predicted": 2, "iou_sum": pytest.approx(0.8)}
    logits = torch.full((1, 4, 4), -5.0)
    logits[0, :2] = 5.0
    logits[0, 2, 0] = 0.5  # above -1, below +1: unstable
    assert stability_score(logits).item() == pytest.approx(8 / 9)
