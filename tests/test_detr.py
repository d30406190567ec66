"""DETR's parts, one test group per file of vitcourse/models/detr/."""

import itertools

import pytest
import torch

from vitcourse.detection.boxes import cxcywh_to_xyxy, generalized_box_iou
from vitcourse.layers import MultiHeadAttention
from vitcourse.models import count_parameters, create_model
from vitcourse.models.detr import (
    DETR,
    DETRConfig,
    HungarianMatcher,
    SetCriterion,
    freeze_batch_norm,
    sine_position_encoding,
    torchvision_resnet,
)


def tiny_config(**overrides) -> DETRConfig:
    """Oddly sized on purpose: 3 classes, D=36, 3 heads, 7 queries, FFN 37."""
    fields = dict(
        img_size=30, num_classes=3, backbone="vitcourse",
        backbone_options={"widths": (8, 12), "depths": (1, 1)}, embed_dim=36, num_heads=3,
        enc_depth=1, dec_depth=2, mlp_dim=37, num_queries=7, dropout=0.0,
    )  # fmt: skip
    return DETRConfig(**{**fields, **overrides})


def random_targets(num_per_image, num_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    targets = []
    for m in num_per_image:
        centre = torch.rand(m, 2, generator=g) * 0.6 + 0.2
        size = torch.rand(m, 2, generator=g) * 0.3 + 0.05
        targets.append({
            "labels": torch.randint(num_classes, (m,), generator=g),
            "boxes": torch.cat([centre, size], dim=1),
        })  # fmt: skip
    return targets


# -- attention with positions on queries and keys ------------------------------------


def test_attention_positions_go_to_queries_and_keys_only():
    attn = MultiHeadAttention(36, 3).eval()
    x, ctx = torch.randn(2, 5, 36), torch.randn(2, 7, 36)
    qpos, kpos = torch.randn(5, 36), torch.randn(2, 7, 36)
    D = 36
    w, b = attn.qkv.weight, attn.qkv.bias
    q = (x + qpos) @ w[:D].T + b[:D]
    k = (ctx + kpos) @ w[D : 2 * D].T + b[D : 2 * D]
    v = ctx @ w[2 * D :].T + b[2 * D :]
    split = lambda t: t.view(2, -1, 3, 12).transpose(1, 2)  # noqa: E731
    weights = (split(q) @ split(k).transpose(-1, -2) / 12**0.5).softmax(-1)
    expected = attn.proj((weights @ split(v)).transpose(1, 2).reshape(2, 5, D))
    out = attn(x, ctx, query_pos=qpos, key_pos=kpos)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # self-attention with the same positions on both, fused and manual paths agree
    fused = attn(x, query_pos=qpos, key_pos=qpos)
    manual, _ = attn(x, query_pos=qpos, key_pos=qpos, return_attention=True)
    torch.testing.assert_close(fused, manual, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(attn(x, query_pos=qpos, key_pos=qpos.clone()), fused, rtol=1e-5, atol=1e-5)


def test_attention_position_shape_is_checked():
    with pytest.raises(ValueError, match="query_pos"):
        MultiHeadAttention(8, 2)(torch.randn(1, 3, 8), query_pos=torch.randn(4, 8))


# -- position encoding ----------------------------------------------------------------


def test_sine_encoding_equals_hugging_face():
    from transformers.models.detr.modeling_detr import DetrSinePositionEmbedding

    valid = torch.ones(2, 5, 7, dtype=torch.bool)
    valid[1, :, 5:] = False  # the second image is padded on the right
    ours = sine_position_encoding(valid, 36)
    ref = DetrSinePositionEmbedding(18, normalize=True)((2, 36, 5, 7), "cpu", torch.float32, mask=valid)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    assert ours.shape == (2, 36, 5, 7)


def test_sine_encoding_rejects_bad_dim():
    with pytest.raises(ValueError, match="multiple of 4"):
        sine_position_encoding(torch.ones(1, 2, 2, dtype=torch.bool), 18)


# -- backbone -------------------------------------------------------------------------


def test_torchvision_layout_loads_torchvision_resnet50_weights():
    import torchvision

    with torch.device("meta"):
        ref = torchvision.models.resnet50()
        ours = torchvision_resnet("resnet50")
    ref_state = {k: v.shape for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours.state_dict().items()} == ref_state


def test_torchvision_layout_computes_what_torchvision_computes():
    import torchvision

    ref = torchvision.models.resnet18().eval()
    ours = torchvision_resnet("resnet18").eval()
    ours.load_state_dict({k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")})
    x = torch.randn(1, 3, 64, 48)
    expected = torch.nn.Sequential(*list(ref.children())[:-2])(x)
    torch.testing.assert_close(ours(x), expected)


def test_frozen_batch_norm_keeps_the_function_and_drops_the_parameters():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
        net[1].weight.uniform_(0.5, 2)
    x = torch.randn(2, 3, 9, 9)
    expected = net(x)
    frozen = freeze_batch_norm(net)
    torch.testing.assert_close(frozen(x), expected, rtol=1e-5, atol=1e-5)
    assert count_parameters(frozen) == 4 * 3 * 9 + 4


# -- the model ------------------------------------------------------------------------


def test_forward_shapes_and_backward():
    model = DETR(tiny_config())
    out = model(torch.rand(2, 3, 30, 26))
    assert out["pred_logits"].shape == (2, 7, 4)
    assert out["pred_boxes"].shape == (2, 7, 4)
    assert ((out["pred_boxes"] >= 0) & (out["pred_boxes"] <= 1)).all()
    assert len(out["aux_outputs"]) == 1
    loss = SetCriterion(3)(out, random_targets([2, 0]))["loss"]
    loss.backward()
    assert model.query_embed.weight.grad is not None
    assert model.backbone.body.stem[0].weight.grad is not None


def test_padding_mask_makes_padded_cells_irrelevant():
    model = DETR(tiny_config()).eval()
    features = torch.randn(1, 12, 5, 6)
    valid = torch.ones(1, 5, 6, dtype=torch.bool)
    valid[..., 4:] = False  # the last two columns of cells are padding
    other = features.clone()
    other[..., 4:] = torch.randn(1, 12, 5, 2)
    a, b = model.forward_head(features, valid), model.forward_head(other, valid)
    torch.testing.assert_close(a["pred_logits"], b["pred_logits"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a["pred_boxes"], b["pred_boxes"], rtol=1e-5, atol=1e-5)


def test_detr_resnet50_parameter_count_equals_hugging_face():
    from transformers import DetrConfig, DetrForObjectDetection

    for hf_config, ours in ((DetrConfig(), {"num_classes": 2}), (DetrConfig(num_labels=91), {})):
        with torch.device("meta"):
            hf = DetrForObjectDetection(hf_config)
            model = create_model("detr_resnet50", **ours)
        assert count_parameters(model) == count_parameters(hf)
    assert count_parameters(model) == 41_524_768  # COCO's 91 ids
    with torch.device("meta"):
        assert count_parameters(create_model("detr_resnet50", num_classes=2)) == 41_501_895


# -- the matcher ----------------------------------------------------------------------


def random_outputs(batch, num_queries, num_classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {
        "pred_logits": torch.randn(batch, num_queries, num_classes + 1, generator=g),
        "pred_boxes": torch.rand(batch, num_queries, 4, generator=g) * 0.5 + 0.1,
    }


def brute_force(matcher, logits, boxes, target):
    cost = matcher.cost_matrix(logits, boxes, target)
    N, M = cost.shape
    best = min(itertools.permutations(range(N), M), key=lambda rows: sum(cost[r, j] for j, r in enumerate(rows)))
    return sum(cost[r, j] for j, r in enumerate(best)).item()


def test_matcher_equals_brute_force_on_small_cases():
    matcher = HungarianMatcher()
    for seed in range(6):
        outputs = random_outputs(1, 5, seed=seed)
        target = random_targets([3], seed=seed)[0]
        (rows, cols), = matcher(outputs, [target])
        cost = matcher.cost_matrix(outputs["pred_logits"][0], outputs["pred_boxes"][0], target)
        ours = cost[rows, cols].sum().item()
        assert ours == pytest.approx(brute_force(matcher, outputs["pred_logits"][0], outputs["pred_boxes"][0], target))
        assert sorted(cols.tolist()) == [0, 1, 2] and len(set(rows.tolist())) == 3


def test_matcher_batched_equals_per_image_and_handles_empty_targets():
    matcher = HungarianMatcher(cost_class=1, cost_bbox=5, cost_giou=2)
    outputs = random_outputs(3, 6)
    targets = random_targets([2, 0, 4])
    batched = matcher(outputs, targets)
    for b in range(3):
        single = matcher({k: v[b : b + 1] for k, v in outputs.items()}, [targets[b]])[0]
        assert torch.equal(batched[b][0], single[0]) and torch.equal(batched[b][1], single[1])
    assert batched[1][0].numel() == 0 and batched[1][1].numel() == 0
    assert batched[2][0].shape == (4,)


def test_matcher_cost_is_the_formula():
    matcher = HungarianMatcher(cost_class=1, cost_bbox=5, cost_giou=2)
    outputs = random_outputs(1, 4)
    t = random_targets([2])[0]
    logits, boxes = outputs["pred_logits"][0], outputs["pred_boxes"][0]
    cost = matcher.cost_matrix(logits, boxes, t)
    i, j = 2, 1
    p = logits[i].softmax(-1)[t["labels"][j]]
    l1 = (boxes[i] - t["boxes"][j]).abs().sum()
    giou = generalized_box_iou(cxcywh_to_xyxy(boxes[i : i + 1]), cxcywh_to_xyxy(t["boxes"][j : j + 1]))[0, 0]
    assert cost[i, j].item() == pytest.approx((-p + 5 * l1 - 2 * giou).item(), abs=1e-6)


def test_matcher_checks_the_batch():
    with pytest.raises(ValueError, match="targets"):
        HungarianMatcher()(random_outputs(2, 3), random_targets([1]))


# -- the set loss ---------------------------------------------------------------------


def test_set_loss_is_zero_box_loss_for_a_perfect_prediction():
    targets = random_targets([2])
    logits = torch.full((1, 4, 4), -10.0)
    logits[0, :, 3] = 10.0  # every slot says "no object"...
    boxes = torch.full((1, 4, 4), 0.5)
    boxes[0, 1], boxes[0, 3] = targets[0]["boxes"][0], targets[0]["boxes"][1]
    logits[0, 1, 3], logits[0, 3, 3] = -10.0, -10.0
    logits[0, 1, targets[0]["labels"][0]] = 10.0  # ...but slots 1 and 3 answer for the objects
    logits[0, 3, targets[0]["labels"][1]] = 10.0
    losses = SetCriterion(3)({"pred_logits": logits, "pred_boxes": boxes}, targets)
    assert losses["loss_bbox"].item() == pytest.approx(0, abs=1e-6)
    assert losses["loss_giou"].item() == pytest.approx(0, abs=1e-5)
    assert losses["loss_ce"].item() < 1e-6


def test_set_loss_down_weights_no_object_and_sums_aux_layers():
    outputs = random_outputs(2, 5)
    outputs["aux_outputs"] = [random_outputs(2, 5, seed=7)]
    targets = random_targets([1, 0])
    losses = SetCriterion(3, eos_coef=0.1)(outputs, targets)
    assert {"loss_ce_0", "loss_bbox_0", "loss_giou_0"} <= set(losses)
    parts = sum(w * (losses[k] + losses[f"{k}_0"]) for k, w in (("loss_ce", 1), ("loss_bbox", 5), ("loss_giou", 2)))
    torch.testing.assert_close(losses["loss"], parts)
    # the weighted mean over slots, with weight 0.1 on "no object", as F.cross_entropy's weight
    only_empty = SetCriterion(3, eos_coef=0.1)(random_outputs(1, 5), random_targets([0]))
    logits = random_outputs(1, 5)["pred_logits"][0]
    assert only_empty["loss_ce"].item() == pytest.approx(-logits.log_softmax(-1)[:, 3].mean().item(), rel=1e-5)
    assert only_empty["loss_bbox"].item() == 0
