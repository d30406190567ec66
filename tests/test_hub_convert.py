"""Weights moved between our ViT/Swin and Hugging Face's and timm's compute the same thing, layer by layer.

Every source model is built offline from a config and then *scrambled*: random
initialisations leave biases at zero, LayerNorms at (1, 0) and Swin's bias tables at
zero, which would hide a swapped bias, norm or table. Sizes are odd (image 30, patch 3,
dim 36, 3 heads, MLP 37; Swin windows of 3) so that no transposition hides behind a
square number; a few tests use the full published sizes (marked slow).
"""

import pytest
import torch

transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")

from timm.models.swin_transformer import SwinTransformer, get_relative_position_index  # noqa: E402
from timm.models.vision_transformer import VisionTransformer  # noqa: E402

from vitcourse.hub import (  # noqa: E402
    ConversionError,
    compare_models,
    swin_from_hf,
    swin_from_timm,
    swin_to_hf,
    vit_from_hf,
    vit_from_timm,
    vit_to_hf,
)
from vitcourse.hub.mapping import build_uninitialised, translate  # noqa: E402
from vitcourse.hub.swin import HF_SWIN_RULES  # noqa: E402
from vitcourse.hub.vit import HF_VIT_RULES, mlp_ratio_for  # noqa: E402
from vitcourse.layers import relative_position_index  # noqa: E402
from vitcourse.models import DistilledViT, Swin, SwinConfig, ViT, ViTConfig, create_model  # noqa: E402

TOLERANCE = 1e-4  # max abs difference, float32


@torch.no_grad()
def scramble(model, seed=0):
    """Give every parameter random values: matrices N(0, 0.02²); norm weights 1 ± 0.2, biases ± 0.2;
    bias tables N(0, 1). (Whatever the model held before, even uninitialised memory, is replaced.)"""
    generator = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=generator)
        if "relative_position_bias_table" in name:
            p.copy_(noise)
        elif p.ndim > 1:
            p.copy_(noise * 0.02)
        else:
            p.copy_(noise * 0.2 + (1.0 if name.endswith("weight") else 0.0))
    return model.eval()


def images(size, batch_size=2, channels=3):
    return torch.randn(batch_size, channels, size, size, generator=torch.Generator().manual_seed(1))


def assert_same_function(ours, theirs, x, blocks):
    """Same embeddings, same output after every block, same logits."""
    report = compare_models(ours, theirs, x)
    assert list(report.layer) == ["embeddings", *[f"block {i}" for i in range(blocks)], "output"]
    assert (report.max_abs_diff <= TOLERANCE).all(), report.to_string()
    assert (report.max_abs_value > 0.1).all(), "a point where both are ~0 proves nothing"
    return report


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def hf_vit_config(**overrides):
    fields = dict(image_size=30, patch_size=3, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                  intermediate_size=37, num_labels=5)  # fmt: skip
    return transformers.ViTConfig(**{**fields, **overrides})


def hf_swin_config(**overrides):
    fields = dict(image_size=24, patch_size=2, embed_dim=9, depths=[2, 2, 2], num_heads=[3, 3, 4], window_size=3,
                  mlp_ratio=1.5, num_labels=5, drop_path_rate=0.0)  # fmt: skip
    return transformers.SwinConfig(**{**fields, **overrides})


def timm_swin(**overrides):
    fields = dict(img_size=24, patch_size=2, embed_dim=9, depths=(2, 2, 2), num_heads=(3, 3, 4), window_size=3,
                  mlp_ratio=1.5, num_classes=5)  # fmt: skip
    return SwinTransformer(**{**fields, **overrides})


# -- ViT and Hugging Face -------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [{}, {"patch_size": 2, "qkv_bias": False}, {"image_size": (30, 24), "layer_norm_eps": 1e-6}],
    ids=["patch3", "patch2-no-qkv-bias", "non-square"],
)
def test_vit_from_hf_classifier(overrides):
    hf = scramble(transformers.ViTForImageClassification(hf_vit_config(**overrides)))
    ours = vit_from_hf(hf)
    assert type(ours) is ViT and ours.config.num_classes == 5
    assert ours.config.norm_eps == hf.config.layer_norm_eps and ours.blocks[0].mlp.fc1.out_features == 37
    assert ours.blocks[0].norm1.eps == ours.norm.eps == hf.config.layer_norm_eps
    height, width = (30, 24) if "image_size" in overrides else (30, 30)
    x = torch.randn(2, 3, height, width)
    assert_same_function(ours, hf, x, blocks=2)


def test_vit_from_hf_model_drops_the_pooler():
    hf = scramble(transformers.ViTModel(hf_vit_config()))
    assert hf.pooler is not None
    ours = vit_from_hf(hf)
    assert ours.config.num_classes == 0
    report = assert_same_function(ours, hf, images(30), blocks=2)
    assert report.tensor_shape.iloc[-1] == (2, 36)  # the normalised [CLS] token


def test_vit_round_trips_are_exact():
    ours = scramble(create_model("vit_micro_patch4_32", embed_dim=36, num_heads=3, depth=2, num_classes=5))
    hf = vit_to_hf(ours)
    assert type(hf).__name__ == "ViTForImageClassification"
    assert hf.config.layer_norm_eps == 1e-6 and hf.config.intermediate_size == 72
    back = vit_from_hf(hf)
    assert back.config == ours.config
    assert_same_state(back, ours)
    assert_same_function(ours, hf, images(32), blocks=2)
    # and Hugging Face -> ours -> Hugging Face
    source = scramble(transformers.ViTForImageClassification(hf_vit_config()))
    assert_same_state(vit_to_hf(vit_from_hf(source)), source)


def test_vit_to_hf_without_head_and_with_labels():
    ours = scramble(ViT(ViTConfig(img_size=30, patch_size=3, embed_dim=36, num_heads=3, depth=1, num_classes=0)))
    hf = vit_to_hf(ours)
    assert type(hf).__name__ == "ViTModel" and hf.pooler is None
    assert_same_function(ours, hf, images(30), blocks=1)
    labels = ["cat", "dog", "bird"]
    hf = vit_to_hf(ViT(ViTConfig(img_size=30, patch_size=3, embed_dim=36, num_heads=3, depth=1, num_classes=3)), labels)
    assert hf.config.id2label == {0: "cat", 1: "dog", 2: "bird"} and hf.config.label2id["dog"] == 1
    with pytest.raises(ValueError, match="2 labels for a model with num_classes=3"):
        vit_to_hf(ViT(ViTConfig(img_size=30, patch_size=3, embed_dim=36, num_heads=3, depth=1, num_classes=3)),
                  labels[:2])


def test_vit_conversion_keeps_train_mode():
    hf = transformers.ViTForImageClassification(hf_vit_config()).train()
    assert vit_from_hf(hf).training
    assert not vit_to_hf(vit_from_hf(hf.eval())).training


def test_conversions_keep_the_dtype():
    hf = scramble(transformers.ViTForImageClassification(hf_vit_config())).double()
    ours = vit_from_hf(hf)
    assert next(ours.parameters()).dtype == torch.float64
    with torch.no_grad():
        assert (ours(images(30).double()) - hf(images(30).double()).logits).abs().max() < 1e-12
    assert next(vit_to_hf(ours).parameters()).dtype == torch.float64
    swin = swin_from_timm(scramble(timm_swin()).double())
    assert next(swin.parameters()).dtype == torch.float64
    assert next(swin_to_hf(swin).parameters()).dtype == torch.float64


def test_transformers_4_names_map_like_transformers_5_names():
    pairs = {
        "encoder.layer.1.attention.attention.query.weight": "layers.1.attention.q_proj.weight",
        "encoder.layer.1.attention.attention.key.bias": "layers.1.attention.k_proj.bias",
        "encoder.layer.1.attention.attention.value.weight": "layers.1.attention.v_proj.weight",
        "encoder.layer.1.attention.output.dense.weight": "layers.1.attention.o_proj.weight",
        "encoder.layer.1.intermediate.dense.bias": "layers.1.mlp.fc1.bias",
        "encoder.layer.1.output.dense.weight": "layers.1.mlp.fc2.weight",
        "encoder.layer.1.layernorm_before.weight": "layers.1.layernorm_before.weight",
    }
    for old, new in pairs.items():
        assert translate(old, HF_VIT_RULES) == translate(new, HF_VIT_RULES) is not None, old
    swin = {
        "encoder.layers.2.blocks.1.attention.self.query.bias": ("layers.2.blocks.1.attn.qkv.bias", 0),
        "encoder.layers.2.blocks.1.attention.self.relative_position_bias_table": (
            "layers.2.blocks.1.attn.relative_position_bias_table", None),
        "encoder.layers.2.blocks.1.attention.self.relative_position_index": (None, None),
        "encoder.layers.2.blocks.1.attention.output.dense.weight": ("layers.2.blocks.1.attn.proj.weight", None),
        "encoder.layers.2.blocks.1.intermediate.dense.weight": ("layers.2.blocks.1.mlp.fc1.weight", None),
        "encoder.layers.2.blocks.1.output.dense.bias": ("layers.2.blocks.1.mlp.fc2.bias", None),
        "encoder.layers.0.downsample.reduction.weight": ("layers.1.downsample.reduction.weight", None),
    }  # fmt: skip
    for old, expected in swin.items():
        assert translate(old, HF_SWIN_RULES) == expected, old


def test_mlp_ratio_gives_the_hidden_size_back():
    for dim in range(1, 200):
        for hidden in (dim, 37, 3 * dim + 1, 4 * dim):
            assert int(dim * mlp_ratio_for(hidden, dim)) == hidden


# -- ViT and timm ---------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["token", "avg"])
def test_vit_from_timm(pool):
    theirs = scramble(VisionTransformer(
        img_size=30, patch_size=3, num_classes=5, embed_dim=36, depth=2, num_heads=3, mlp_ratio=37 / 36,
        global_pool=pool, fc_norm=False,
    ))  # fmt: skip
    ours = vit_from_timm(theirs)
    assert ours.config.pool == ("cls" if pool == "token" else "mean") and ours.config.norm_eps == 1e-6
    assert_same_function(ours, theirs, images(30), blocks=2)


# -- ViT: what must be refused ------------------------------------------------------------


def test_vit_from_timm_refuses_a_distilled_deit():
    deit = timm.create_model("deit_tiny_distilled_patch16_224", img_size=32, patch_size=8, depth=1)
    with pytest.raises(ConversionError) as error:
        vit_from_timm(deit)
    message = str(error.value)
    assert "dist_token" in message and "head_dist.weight" in message and "DistilledViT" in message
    assert "pos_embed.weight (from pos_embed): got (1, 18, 192), expected (1, 17, 192)" in message


def test_vit_from_timm_refuses_a_hybrid():
    hybrid = timm.create_model("vit_tiny_r_s16_p8_224", img_size=64, depth=1)
    with pytest.raises(ConversionError, match=r"HybridEmbed(.|\n)*patch_embed\.backbone\.conv\.weight"):
        vit_from_timm(hybrid)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"init_values": 1e-5}, r"unexpected(.|\n)*blocks\.0\.ls1\.gamma"),
        ({"global_pool": "avg"}, r"global_pool='avg' \(fc_norm: LayerNorm\)"),
        ({"no_embed_class": True}, r"pos_embed\.weight \(from pos_embed\): got \(1, 100, 36\), expected \(1, 101"),
        ({"reg_tokens": 2}, r"reg_token"),
        ({"act_layer": "gelu_tanh"}, r"blocks\.0\.mlp\.act is GELUTanh\(\); ours is the exact nn\.GELU\(\)"),
        ({"class_token": False, "global_pool": "avg", "fc_norm": False}, r"missing(.|\n)*cls_token"),
    ],
    ids=["layer-scale", "fc-norm", "no-embed-class", "registers", "tanh-gelu", "no-cls-token"],
)
def test_vit_from_timm_refuses_other_vits(kwargs, expected):
    fields = dict(img_size=30, patch_size=3, num_classes=5, embed_dim=36, depth=1, num_heads=3)
    with pytest.raises(ConversionError, match=expected):
        vit_from_timm(VisionTransformer(**{**fields, **kwargs}))


def test_vit_from_hf_refuses_other_models():
    with pytest.raises(ConversionError, match=r"hidden_act='gelu_new'"):
        vit_from_hf(transformers.ViTForImageClassification(hf_vit_config(hidden_act="gelu_new")))
    with pytest.raises(ConversionError, match="expected one of ViTModel, ViTForImageClassification, got SwinModel"):
        vit_from_hf(transformers.SwinModel(hf_swin_config()))
    deit = transformers.DeiTForImageClassificationWithTeacher(transformers.DeiTConfig(
        image_size=30, patch_size=3, hidden_size=36, num_hidden_layers=1, num_attention_heads=3, intermediate_size=37,
    ))  # fmt: skip
    with pytest.raises(ConversionError, match="got DeiTForImageClassificationWithTeacher"):
        vit_from_hf(deit)
    with pytest.raises(ConversionError, match="img_size=30 is not a multiple of patch_size=4"):
        vit_from_hf(transformers.ViTModel(hf_vit_config(patch_size=4)))


def test_vit_to_hf_refuses_what_hugging_face_has_not():
    with pytest.raises(ConversionError, match="got DistilledViT"):
        vit_to_hf(create_model("deit_micro_distilled_patch4_32"))
    assert isinstance(create_model("deit_micro_distilled_patch4_32"), DistilledViT)
    with pytest.raises(ConversionError, match="pool='mean'"):
        vit_to_hf(create_model("vit_pico_patch2_8", pool="mean"))


# -- Swin -----------------------------------------------------------------------------


SWIN_CASES = {
    "window3": {},
    "patch3-2stages": dict(image_size=36, patch_size=3, embed_dim=12, depths=[2, 3], num_heads=[2, 3], mlp_ratio=4.0),
    "window7": dict(image_size=56, embed_dim=12, depths=[2, 2, 1], num_heads=[1, 2, 4], window_size=7, qkv_bias=False),
}


@pytest.mark.parametrize("case", SWIN_CASES)
def test_swin_from_hf(case):
    hf = scramble(transformers.SwinForImageClassification(hf_swin_config(**SWIN_CASES[case])))
    ours = swin_from_hf(hf)
    assert type(ours) is Swin and ours.config.num_classes == 5
    size = hf.config.image_size
    assert_same_function(ours, hf, images(size), blocks=sum(hf.config.depths))
    assert_same_state(swin_to_hf(ours), hf)  # Hugging Face -> ours -> Hugging Face
    assert_same_state(swin_from_hf(swin_to_hf(ours)), ours)  # ours -> Hugging Face -> ours


def test_swin_from_hf_model_without_head():
    hf = scramble(transformers.SwinModel(hf_swin_config()))
    ours = swin_from_hf(hf)
    assert ours.config.num_classes == 0
    report = assert_same_function(ours, hf, images(24), blocks=6)
    assert report.tensor_shape.iloc[-1] == (2, 36)  # the pooled features


@pytest.mark.parametrize("case", SWIN_CASES)
def test_swin_from_timm(case):
    fields = {"img_size" if k == "image_size" else k: v for k, v in SWIN_CASES[case].items()}
    theirs = scramble(timm_swin(**fields))
    ours = swin_from_timm(theirs)
    assert_same_function(ours, theirs, images(theirs.patch_embed.img_size[0]), blocks=sum(ours.config.depths))


def test_the_three_index_relative_positions_alike():
    for M in (2, 3, 4, 7):
        ours = relative_position_index(M)
        assert torch.equal(get_relative_position_index(M, M), ours)
        bias = transformers.models.swin.modeling_swin.SwinRelativePositionBias(2, (M, M))
        assert torch.equal(bias._create_relative_position_index(), ours)


def test_swin_converters_refuse_other_models():
    with pytest.raises(ConversionError, match=r"unexpected(.|\n)*embeddings\.position_embeddings"):
        swin_from_hf(transformers.SwinModel(hf_swin_config(use_absolute_embeddings=True)))
    with pytest.raises(ConversionError, match="layer_norm_eps=1e-06"):
        swin_from_hf(transformers.SwinModel(hf_swin_config(layer_norm_eps=1e-6)))
    with pytest.raises(ConversionError, match="window_size=5 does not divide the 12x12 grid"):
        swin_from_hf(transformers.SwinModel(hf_swin_config(window_size=5)))  # Hugging Face pads, ours refuses
    with pytest.raises(ConversionError, match="windows and shifts per block differ"):
        swin_from_timm(timm_swin(window_size=(3, 2, 3)))  # a window per stage
    with pytest.raises(ConversionError, match="always_partition=True"):
        swin_from_timm(timm_swin(always_partition=True))
    with pytest.raises(ConversionError, match="expected timm's SwinTransformer, got VisionTransformer"):
        swin_from_timm(VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2))
    with pytest.raises(ConversionError, match="window_size=4 is larger than stage 2: a 2x2 grid"):
        swin_to_hf(Swin(SwinConfig(img_size=16, patch_size=2, embed_dim=8, depths=(1, 1, 1), num_heads=(1, 1, 1),
                                   window_size=4)))  # fmt: skip


def test_swin_converters_check_the_relative_position_index():
    theirs = timm_swin()
    block = theirs.layers[1].blocks[0].attn
    block.relative_position_index.copy_(block.relative_position_index.flip(0))
    with pytest.raises(ConversionError, match=r"layers\.1\.blocks\.0\.attn\.relative_position_index indexes"):
        swin_from_timm(theirs)


# -- the published sizes ----------------------------------------------------------------


@pytest.mark.slow
def test_vit_base_16_timm_ours_hugging_face():
    theirs = scramble(build_uninitialised(lambda: timm.create_model("vit_base_patch16_224")))
    ours = vit_from_timm(theirs)
    assert ours.config == ViTConfig()
    x = images(224, batch_size=1)
    assert_same_function(ours, theirs, x, blocks=12)
    hf = vit_to_hf(ours)
    assert hf.config.layer_norm_eps == 1e-6  # timm's, carried over
    assert_same_function(ours, hf, x, blocks=12)
    assert_same_state(vit_from_hf(hf), ours)


@pytest.mark.slow
def test_vit_base_16_from_hugging_face_defaults():
    hf = build_uninitialised(lambda: transformers.ViTForImageClassification(transformers.ViTConfig()))
    assert vit_from_hf(hf).config == ViTConfig(num_classes=2, norm_eps=1e-12)  # ViTConfig's defaults


@pytest.mark.slow
def test_swin_tiny_timm_ours_hugging_face():
    theirs = scramble(timm.create_model("swin_tiny_patch4_window7_224"))
    ours = swin_from_timm(theirs)
    assert ours.config == SwinConfig(drop_path=0.1)  # timm's default drop_path_rate
    x = images(224, batch_size=1)
    assert_same_function(ours, theirs, x, blocks=12)
    hf = swin_to_hf(ours)
    assert_same_function(ours, hf, x, blocks=12)
    assert_same_state(swin_from_hf(hf), ours)
