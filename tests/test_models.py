"""Every registered model: builds, runs forward and backward, has the published size,
keeps samples apart, and fails with a useful message on bad input."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import vitcourse.models
from vitcourse.models import (
    DistilledViT,
    HybridViT,
    HybridViTConfig,
    ResNet,
    Swin,
    ViT,
    ViTConfig,
    count_parameters,
    create_model,
    get_config,
    list_models,
    register_model,
    registry,
    state_dict_from_timm,
    state_dict_to_timm,
)

# Parameter counts with 1000 classes: the ViT/DeiT/Swin papers' sizes, exactly as timm counts them.
PUBLISHED_PARAMETERS = {
    "vit_tiny_patch16_224": 5_717_416,
    "vit_small_patch16_224": 22_050_664,
    "vit_base_patch16_224": 86_567_656,
    "vit_base_patch32_224": 88_224_232,
    "vit_large_patch16_224": 304_326_632,
    "vit_huge_patch14_224": 632_045_800,
    "deit_tiny_patch16_224": 5_717_416,
    "deit_small_patch16_224": 22_050_664,
    "deit_base_patch16_224": 86_567_656,
    "deit_tiny_distilled_patch16_224": 5_910_800,
    "deit_small_distilled_patch16_224": 22_436_432,
    "deit_base_distilled_patch16_224": 87_338_192,
    "swin_tiny_patch4_window7_224": 28_288_354,
    "swin_small_patch4_window7_224": 49_606_258,
    "swin_base_patch4_window7_224": 87_768_224,
}
BIG = set(PUBLISHED_PARAMETERS)


def _takes_images(name):
    """Image classifiers only: language models (GPT, ...), Donut, self-supervised or
    generative image models (MAE, dVAE, DiT) and the detectors (DETR) have their own test files."""
    try:
        config = get_config(name)
        return (
            hasattr(config, "img_size")
            and hasattr(config, "num_classes")
            and not hasattr(config, "num_queries")  # detectors
            and not hasattr(config, "class_dropout")  # class-conditional diffusion (DiT)
        )
    except ValueError:  # registered with a builder function
        return True


SMALL = [name for name in list_models() if name not in BIG and _takes_images(name)]
TRANSFORMERS = [name for name in SMALL if not name.startswith("resnet")]


def images_for(model, batch_size=2):
    config = model.config
    return torch.randn(batch_size, config.in_chans, config.img_size, config.img_size)


def meta_model(name, **overrides):
    with torch.device("meta"):
        return create_model(name, **overrides)


# -- the registry ---------------------------------------------------------------------


def test_registry_lists_every_family():
    names = list_models()
    assert names == sorted(names)
    assert BIG <= set(names)
    for family in ("vit_", "deit_", "swin_", "resnet_", "vit_hybrid_"):
        assert any(name.startswith(family) for name in names), family
    assert list_models("swin_*") == [name for name in names if name.startswith("swin_")]
    assert "vit_base_patch16_224" in list_models("*base*16*")


def test_every_name_resolves_and_every_preset_module_is_listed():
    for name in vitcourse.models.__all__:
        assert getattr(vitcourse.models, name) is not None, name
    folder = Path(vitcourse.models.__file__).parent
    registering = {
        ".".join(path.relative_to(folder).with_suffix("").parts)
        for path in folder.rglob("*.py")
        if path.name not in ("registry.py", "__init__.py") and "@register_model" in path.read_text(encoding="utf-8")
    }
    assert registering == set(registry.PRESET_MODULES)


def test_the_registry_imports_only_what_a_name_needs():
    """`import vitcourse.models` imports no model; building a ViT imports only vit.py (no
    DETR, torchvision or scipy, which every process importing the package used to pay);
    `import vitcourse.hub` imports no DETR either."""
    script = """
import json, sys
import vitcourse.models as models
heavy = ("vitcourse.models.", "torchvision", "scipy")
loaded = lambda: sorted(name for name in sys.modules if name.startswith(heavy))
before = loaded()
models.create_model("vit_micro_patch4_32")
after = loaded()
import vitcourse.hub
print(json.dumps([before, after, [name for name in loaded() if name.startswith(heavy[1:]) or ".detr" in name]]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after, hub = json.loads(done.stdout)
    assert before == ["vitcourse.models.registry"]
    assert after == ["vitcourse.models.registry", "vitcourse.models.vit"]
    assert hub == []  # vitcourse.hub imports DETR only when detr_from_hf is first used
    from vitcourse.hub import detr, detr_from_hf

    assert detr_from_hf is detr.detr_from_hf


def test_create_model_applies_overrides():
    model = create_model("vit_micro_patch4_32", num_classes=3, depth=2, pool="mean")
    assert isinstance(model, ViT) and model.config.num_classes == 3 and len(model.blocks) == 2
    assert model.head.out_features == 3
    # the preset itself is untouched
    assert get_config("vit_micro_patch4_32").num_classes == 10


def test_unknown_name_lists_the_models():
    with pytest.raises(ValueError, match="unknown model 'vit_gigantic'.*vit_base_patch16_224"):
        create_model("vit_gigantic")


def test_unknown_field_lists_the_fields():
    with pytest.raises(ValueError, match="no field.*num_class.*num_classes"):
        create_model("vit_micro_patch4_32", num_class=10)


def test_register_model_both_forms(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_model(ViT)
    def vit_test_patch2_8() -> ViTConfig:
        return ViTConfig(img_size=8, patch_size=2, embed_dim=12, depth=1, num_heads=2, num_classes=4)

    @register_model
    def linear_test(num_classes: int = 3) -> torch.nn.Module:
        return torch.nn.Linear(5, num_classes)

    assert create_model("vit_test_patch2_8", num_classes=5).head.out_features == 5
    assert create_model("linear_test", num_classes=7).out_features == 7
    with pytest.raises(ValueError, match="already registered"):
        register_model(ViT)(vit_test_patch2_8)
    with pytest.raises(ValueError, match="registered with a builder function"):
        get_config("linear_test")


# -- every model runs forward and backward ---------------------------------------------


@pytest.mark.parametrize("name", SMALL)
def test_forward_backward(name):
    model = create_model(name)
    x = images_for(model)
    logits = model(x)
    assert logits.shape == (2, model.config.num_classes)
    loss = F.cross_entropy(logits, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss)
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{param_name} gets no gradient"
        assert torch.isfinite(param.grad).all(), param_name


@pytest.mark.parametrize("name", sorted(BIG))
def test_big_presets_forward_backward_on_meta(name):
    """Full size, no memory: shapes and autograd propagate on the meta device."""
    model = meta_model(name)
    with torch.device("meta"):
        logits = model(images_for(model))
        logits.sum().backward()
    assert logits.shape == (2, 1000)
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMETERS))
def test_parameter_counts_match_the_papers(name):
    assert count_parameters(meta_model(name)) == PUBLISHED_PARAMETERS[name]


@pytest.mark.parametrize("name", sorted(BIG))
def test_parameter_counts_match_timm(name):
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        reference = timm.create_model(name, num_classes=1000)
    assert count_parameters(meta_model(name)) == count_parameters(reference)


@pytest.mark.parametrize(
    "name", ["vit_base_patch16_224", "swin_tiny_patch4_window7_224", "deit_tiny_distilled_patch16_224"]
)
def test_override_num_classes_counts_the_new_head(name):
    full = count_parameters(meta_model(name))
    model = meta_model(name, num_classes=10)
    features = model.norm.normalized_shape[0]
    heads = 2 if isinstance(model, DistilledViT) else 1
    assert count_parameters(model) == full - heads * 990 * (features + 1)


@pytest.mark.parametrize("name", SMALL)
def test_samples_in_a_batch_do_not_mix(name):
    """The original TP2 bug (batch_first=False): sample 0's output must not depend on sample 1."""
    model = create_model(name).eval()  # eval: BatchNorm uses running statistics
    x = images_for(model, batch_size=3).requires_grad_()
    out = model(x)
    for i in range(3):
        torch.testing.assert_close(out[i : i + 1], model(x[i : i + 1]), rtol=1e-4, atol=1e-5)
    (grad,) = torch.autograd.grad(out[0].sum(), x)
    assert grad[1:].abs().max() == 0
    assert grad[0].abs().max() > 0


# -- ViT --------------------------------------------------------------------------------


def odd_vit(**overrides):
    """Hugging Face's trick: sizes that aren't powers of two, so transposed axes can't hide."""
    config = {"img_size": 30, "patch_size": 3, "in_chans": 3, "num_classes": 7, "embed_dim": 36, "depth": 2}
    config |= {"num_heads": 3, "mlp_ratio": 37 / 36}
    config.update(overrides)
    return ViT(ViTConfig(**config))


@pytest.mark.parametrize(
    "overrides,num_patches,grid",
    [({}, 100, (10, 10)), ({"patch_size": 2}, 225, (15, 15)), ({"img_size": (30, 24)}, 80, (10, 8))],
)
def test_odd_sizes(overrides, num_patches, grid):
    model = odd_vit(**overrides)
    assert model.num_patches == num_patches and model.grid_size == grid
    assert model.blocks[0].mlp.fc1.out_features == 37
    assert model.pos_embed.weight.shape == (1, num_patches + 1, 36)
    height, width = grid[0] * model.patch_size, grid[1] * model.patch_size
    x = torch.randn(2, 3, height, width)
    tokens = model.embed(x)
    assert tokens.shape == (2, num_patches + 1, 36)
    logits, attentions = model(x, return_attention=True)
    assert logits.shape == (2, 7)
    assert [a.shape for a in attentions] == [(2, 3, num_patches + 1, num_patches + 1)] * 2


def test_return_attention_shapes_rows_and_logits():
    model = create_model("vit_nano_patch4_16").eval()
    x = images_for(model)
    logits, attentions = model(x, return_attention=True)
    assert len(attentions) == model.config.depth
    for weights in attentions:
        assert weights.shape == (2, 4, 17, 17)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 17))
        assert (weights >= 0).all()
    # the manual path (weights) and the fused path (no weights) compute the same logits
    torch.testing.assert_close(logits, model(x), rtol=1e-5, atol=1e-5)


def test_pieces_compose_into_forward():
    model = create_model("vit_nano_patch4_16").eval()
    x = images_for(model)
    tokens = model.embed(x)
    torch.testing.assert_close(tokens, torch.cat([model.prefix_tokens(2), model.patch_tokens(x)], dim=1))
    features = model.encode(tokens)
    torch.testing.assert_close(features, model.forward_features(x))
    torch.testing.assert_close(model.forward_head(features), model(x))
    # an encoder on a subset of tokens, as MAE uses it
    kept = torch.cat([tokens[:, :1], tokens[:, 1::4]], dim=1)
    assert model.encode(kept).shape == (2, 1 + 4, model.embed_dim)


def test_pool_cls_and_mean():
    torch.manual_seed(0)
    cls_model = create_model("vit_nano_patch4_16").eval()
    mean_model = create_model("vit_nano_patch4_16", pool="mean").eval()
    mean_model.load_state_dict(cls_model.state_dict())  # same weights, different readout
    x = images_for(cls_model)
    features = cls_model.forward_features(x)
    torch.testing.assert_close(cls_model(x), cls_model.head(features[:, 0]))
    torch.testing.assert_close(mean_model(x), mean_model.head(features[:, 1:].mean(dim=1)))
    assert not torch.allclose(cls_model(x), mean_model(x))


def test_num_classes_zero_returns_features():
    model = create_model("vit_nano_patch4_16", num_classes=0).eval()
    assert model(images_for(model)).shape == (2, 64)


def test_drop_path_schedule_and_dropout_are_wired():
    model = create_model("vit_nano_patch4_16", drop_path=0.3, dropout=0.1)
    rates = [block.drop_path.p for block in model.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])
    model.train()
    x = images_for(model)
    assert not torch.allclose(model(x), model(x))  # stochastic while training
    model.eval()
    torch.testing.assert_close(model(x), model(x))


def test_a_tiny_vit_learns():
    """Not a benchmark: 60 AdamW steps must fit 32 fixed images far better than chance."""
    torch.manual_seed(0)
    model = create_model("vit_pico_patch2_8")
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first > 2.0 and loss.item() < 0.5 * first


# -- the same numbers as timm -------------------------------------------------------------


def test_vit_tiny_equals_timm_with_copied_weights():
    timm = pytest.importorskip("timm")
    reference = timm.create_model("vit_tiny_patch16_224").eval()
    model = create_model("vit_tiny_patch16_224").eval()
    model.load_state_dict(state_dict_from_timm(reference.state_dict()))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max() <= 1e-4
    assert state_dict_to_timm(model.state_dict()).keys() == reference.state_dict().keys()


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_odd_vit_equals_timm(pool):
    pytest.importorskip("timm")
    from timm.models.vision_transformer import VisionTransformer

    model = odd_vit(pool=pool).eval()
    reference = VisionTransformer(
        img_size=30,
        patch_size=3,
        num_classes=7,
        embed_dim=36,
        depth=2,
        num_heads=3,
        mlp_ratio=37 / 36,
        global_pool="token" if pool == "cls" else "avg",
        fc_norm=False,
    ).eval()
    reference.load_state_dict(state_dict_to_timm(model.state_dict()))
    x = torch.randn(3, 3, 30, 30)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


def test_distilled_vit_equals_timm():
    pytest.importorskip("timm")
    from timm.models.deit import VisionTransformerDistilled

    model = create_model("deit_micro_distilled_patch4_32", embed_dim=36, num_heads=3, depth=2).eval()
    reference = VisionTransformerDistilled(
        img_size=32, patch_size=4, num_classes=10, embed_dim=36, depth=2, num_heads=3, mlp_ratio=2.0
    ).eval()
    reference.load_state_dict(state_dict_to_timm(model.state_dict()))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


# -- hybrid and CNN -----------------------------------------------------------------------


def test_hybrid_tokens_come_from_the_cnn():
    model = create_model("vit_hybrid_micro_patch4_32").eval()
    assert isinstance(model, HybridViT)
    assert model.num_patches == 64 and model.grid_size == (8, 8)
    x = images_for(model)
    features = model.patch_embed.backbone.forward_features(x)
    assert features.shape == (2, 64, 8, 8)
    expected = model.patch_embed.proj(features).flatten(2).transpose(1, 2)
    torch.testing.assert_close(model.patch_embed(x), expected)
    logits, attentions = model(x, return_attention=True)
    assert logits.shape == (2, 10) and attentions[0].shape == (2, 4, 65, 65)


def test_hybrid_patch_size_is_in_pixels():
    config = HybridViTConfig(
        img_size=32,
        patch_size=8,
        embed_dim=16,
        depth=1,
        num_heads=2,
        num_classes=3,
        backbone_widths=(8, 16),
        backbone_depths=(1, 1),
        backbone_stem_stride=2,
    )
    model = HybridViT(config)
    assert model.grid_size == (4, 4) and model.patch_embed.proj.kernel_size == (2, 2)
    with pytest.raises(ValueError, match="multiple of the CNN stem's stride 4"):
        HybridViTConfig(
            img_size=32,
            patch_size=2,
            backbone_widths=(8, 16),
            backbone_depths=(1, 1),
            backbone_stem_stride=2,
            embed_dim=16,
            num_heads=2,
        )


def test_resnet_accepts_any_size_and_halves_per_stage():
    model = create_model("resnet_tiny").eval()
    assert isinstance(model, ResNet) and model.stride == 4
    assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 128, 8, 8)
    assert model(torch.randn(1, 3, 48, 40)).shape == (1, 10)


# -- errors a student can cause -----------------------------------------------------------


def test_img_size_not_divisible_by_patch_size():
    with pytest.raises(ValueError, match="img_size=30 is not a multiple of patch_size=4.*img_size=28 or 32"):
        ViTConfig(img_size=30, patch_size=4)
    with pytest.raises(ValueError, match="img_size=30 is not a multiple of patch_size=4"):
        create_model("vit_micro_patch4_32", img_size=30)


def test_embed_dim_not_divisible_by_num_heads():
    with pytest.raises(ValueError, match="embed_dim=100 is not divisible by num_heads=3.*pick num_heads in"):
        create_model("vit_micro_patch4_32", embed_dim=100, num_heads=3)
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        create_model("swin_micro_patch2_window4_32", num_heads=(3, 4, 8))


@pytest.mark.parametrize(
    "name",
    [
        "vit_micro_patch4_32",
        "deit_micro_distilled_patch4_32",
        "swin_micro_patch2_window4_32",
        "vit_hybrid_micro_patch4_32",
    ],
)
@pytest.mark.parametrize("shape", [(3, 32, 32), (2, 3, 16, 16), (2, 1, 32, 32), (2, 32, 32, 3)])
def test_wrong_input_shape(name, shape):
    model = create_model(name)
    with pytest.raises(ValueError, match=r"expected images shaped \(B, 3, 32, 32\)"):
        model(torch.randn(*shape))


def test_bad_pool_and_distilled_mean_pool():
    with pytest.raises(ValueError, match='pool must be "cls" or "mean"'):
        create_model("vit_micro_patch4_32", pool="max")
    with pytest.raises(ValueError, match='use pool="cls"'):
        create_model("deit_micro_distilled_patch4_32", pool="mean")


def test_swin_window_must_divide_the_grid():
    with pytest.raises(ValueError, match=r"window_size=5 does not divide the 16x16 grid.*\[2, 4, 8, 16\]"):
        create_model("swin_micro_patch2_window4_32", window_size=5)
    with pytest.raises(ValueError, match="must be a multiple of 4"):
        create_model("swin_micro_patch2_window4_32", img_size=36)
    assert isinstance(create_model("swin_micro_patch2_window4_32", window_size=8), Swin)


def test_vit_b16_token_count_matches_the_slides():
    """Sanity of the sizes the chapter quotes: 224/16 → 196 tokens; 196² = 38,416 scores."""
    model = meta_model("vit_base_patch16_224")
    assert model.num_patches == 196 and model.num_patches**2 == 38_416
    assert math.prod(model.grid_size) == 196
