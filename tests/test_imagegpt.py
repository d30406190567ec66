"""ImageGPT: palette, raster order, the autoregressive density, completion, HF parity."""

import math

import pytest
import torch

from vitcourse.models import GPT, GPTConfig, create_model
from vitcourse.models.imagegpt import (
    ColorPalette,
    autoregressive_loss,
    complete,
    features,
    log_likelihood,
    shift_in,
)

ODD = dict(vocab_size=7, max_seq_len=15, embed_dim=36, depth=2, num_heads=3, mlp_ratio=2.0, activation="quick_gelu",
           norm="rmsnorm", lm_head="untied", start_token=True, dropout=0.0, attn_dropout=0.0)  # fmt: skip


def odd_model(seed=0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**ODD)).eval()


def test_start_token_is_read_but_never_predicted():
    model = odd_model()
    tokens = torch.tensor([[6, 0, 1, 5, 2]])  # 6 is the start token
    assert model(tokens).shape == (1, 5, 6)
    tied = GPT(GPTConfig(**{**ODD, "lm_head": "tied"}))
    assert tied(tokens).shape == (1, 5, 6)
    assert GPT(GPTConfig(**{**ODD, "start_token": False}))(tokens).shape == (1, 5, 7)


def test_palette_encodes_to_the_nearest_colour_in_raster_order():
    centers = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    palette = ColorPalette(centers)
    image = torch.zeros(1, 3, 2, 3)
    image[0, :, 0, 2] = torch.tensor([0.9, 0.1, 0.0])  # row 0, column 2: red-ish
    image[0, :, 1, 0] = 0.8  # row 1, column 0: white-ish
    tokens = palette.encode(image)
    assert tokens.tolist() == [[0, 0, 1, 2, 0, 0]]
    assert torch.equal(palette.decode(tokens, 2, 3)[0, :, 0, 2], centers[1])


def test_palette_fit_sorts_by_brightness():
    images = torch.cat([torch.full((4, 1, 3, 3), v) for v in (0.9, 0.1, 0.5)])
    palette = ColorPalette.fit(images, 3)
    assert torch.allclose(palette.centers.flatten(), torch.tensor([0.1, 0.5, 0.9]), atol=1e-5)


def test_density_is_the_product_of_the_conditionals():
    model = odd_model()
    tokens = torch.randint(0, 6, (3, 15), generator=torch.Generator().manual_seed(0))
    total = log_likelihood(model, tokens)
    # the same sum, one conditional at a time: p(x_i | x_<i) from a model that sees only x_<i
    by_hand = torch.zeros(3)
    with torch.no_grad():
        for i in range(15):
            prefix = shift_in(tokens, 6)[:, : i + 1]
            by_hand += model(prefix)[:, -1].log_softmax(-1).gather(1, tokens[:, i : i + 1]).squeeze(1)
    assert torch.allclose(total.detach(), by_hand, atol=1e-4)
    assert torch.allclose(autoregressive_loss(model, tokens).detach(), -total.detach().sum() / 45, atol=1e-5)


def test_complete_keeps_the_given_half_and_features_shape():
    model = odd_model()
    tokens = torch.randint(0, 6, (2, 15), generator=torch.Generator().manual_seed(1))
    out = complete(model, tokens, 7, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 15) and torch.equal(out[:, :7], tokens[:, :7])
    assert int(out.max()) < 6  # never the start token
    assert features(model, tokens).shape == (2, 36)
    inputs = shift_in(tokens, 6)
    with torch.no_grad():
        assert torch.equal(model.hidden_states(inputs, num_blocks=2), model.hidden_states(inputs))
        assert not torch.allclose(features(model, tokens, num_blocks=1), features(model, tokens))


def test_presets_build():
    config = create_model("imagegpt_tiny_14").config
    assert (config.vocab_size, config.max_seq_len, config.num_outputs) == (17, 196, 16)


transformers = pytest.importorskip("transformers")


def test_imagegpt_from_hf_same_logits():
    from vitcourse.hub import imagegpt_from_hf

    config = transformers.ImageGPTConfig(vocab_size=17, n_positions=20, n_embd=36, n_layer=2, n_head=3, n_inner=74)
    hf = transformers.ImageGPTForCausalImageModeling(config).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in hf.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            p.copy_(noise * 0.02 if p.ndim > 1 else noise * 0.2 + float(name.endswith("weight")))
    ours = imagegpt_from_hf(hf)
    tokens = torch.randint(0, 17, (2, 20), generator=generator)
    with torch.no_grad():
        assert (hf(tokens).logits - ours(tokens)).abs().max() < 1e-4


def test_imagegpt_from_hf_refuses_gpt2():
    from vitcourse.hub import ConversionError, imagegpt_from_hf

    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=8))
    with pytest.raises(ConversionError, match="expected ImageGPTForCausalImageModeling"):
        imagegpt_from_hf(gpt2)


def test_imagegpt_small_preset_counts_hugging_face_parameters():
    with torch.device("meta"):
        ours = create_model("imagegpt_small")
        theirs = transformers.ImageGPTForCausalImageModeling(transformers.ImageGPTConfig())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    assert math.isclose(ours.config.mlp_ratio, 4.0)
