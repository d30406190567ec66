"""MAE: masking, the encoder on visible patches only, the decoder, the loss, and Hugging Face parity."""

import pytest
import torch

from vitcourse.hub import ConversionError
from vitcourse.models import (
    MAE,
    MAEConfig,
    ViT,
    ViTConfig,
    count_parameters,
    create_model,
    mae_loss,
    random_masking,
)

ODD = dict(
    img_size=30, patch_size=3, in_chans=3, embed_dim=36, depth=2, num_heads=3, mlp_ratio=2.0,
    decoder_embed_dim=20, decoder_depth=2, decoder_num_heads=2,
)  # fmt: skip


def odd_mae(**overrides) -> MAE:
    torch.manual_seed(0)
    return MAE(MAEConfig(**{**ODD, **overrides})).eval()


def images(batch_size=2, size=30, channels=3):
    return torch.randn(batch_size, channels, size, size, generator=torch.Generator().manual_seed(1))


def test_random_masking_hides_the_ratio_and_restores_the_order():
    noise = torch.rand(3, 100, generator=torch.Generator().manual_seed(0))
    m = random_masking(3, 100, 0.75, noise)
    assert m.keep.shape == (3, 25) and m.mask.shape == (3, 100)
    assert m.mask.sum(dim=1).tolist() == [75, 75, 75]
    assert not m.mask.gather(1, m.keep).any()  # kept patches are the visible ones
    shuffle = noise.argsort(dim=1)
    assert torch.equal(shuffle.gather(1, m.restore), torch.arange(100).expand(3, -1))
    again = random_masking(3, 100, 0.75, noise)
    assert torch.equal(again.mask, m.mask)  # same noise, same mask
    with pytest.raises(ValueError, match="noise must be"):
        random_masking(3, 99, 0.75, noise)


def test_forward_shapes_on_odd_sizes():
    model = odd_mae()
    out = model(images())
    assert out.pred.shape == (2, 100, 27) and out.mask.shape == (2, 100) and out.loss.ndim == 0
    latent, masking = model.forward_encoder(images())
    assert latent.shape == (2, 1 + 25, 36)  # the encoder got a quarter of the patches
    assert model.forward_with_mask_tokens(images()).shape == (2, 100, 27)
    assert model.features(images()).shape == (2, 36)
    assert model.to_classifier(7)(images()).shape == (2, 7)


def test_encoder_never_sees_hidden_patches():
    model = odd_mae()
    x = images()
    noise = torch.rand(2, 100, generator=torch.Generator().manual_seed(3))
    latent, masking = model.forward_encoder(x, noise)
    pixel_mask = masking.mask.view(2, 1, 10, 1, 10, 1).expand(2, 3, 10, 3, 10, 3).reshape(2, 3, 30, 30)
    changed = torch.where(pixel_mask, torch.randn_like(x) * 5, x)  # repaint the hidden patches only
    latent2, _ = model.forward_encoder(changed, noise)
    assert torch.allclose(latent, latent2, atol=1e-6)


def test_forward_visible_equals_the_full_sequence_restricted_to_the_kept_tokens():
    vit = ViT(ViTConfig(img_size=30, patch_size=3, num_classes=0, embed_dim=36, depth=2, num_heads=3)).eval()
    x = images()
    keep = torch.tensor([[5, 0, 99, 42], [7, 8, 9, 1]])
    tokens = vit.embed(x)  # (B, 1 + N, D)
    index = torch.cat([torch.zeros(2, 1, dtype=torch.long), keep + 1], dim=1)
    subset = torch.gather(tokens, 1, index.unsqueeze(-1).expand(-1, -1, 36))
    assert torch.allclose(vit.forward_visible(x, keep), vit.encode(subset), atol=1e-6)


def test_loss_counts_hidden_patches_only_and_norm_pix_targets():
    model = odd_mae()
    x = images()
    out = model(x)
    visible = ~out.mask
    moved = torch.where(visible.unsqueeze(-1), out.pred + 10.0, out.pred)  # spoil visible predictions only
    assert torch.allclose(mae_loss(moved, x, out.mask, 3), out.loss)
    normed = odd_mae(norm_pix_loss=True)(x)
    assert not torch.allclose(normed.loss, out.loss)


def test_reconstruct_keeps_the_visible_pixels():
    model = odd_mae()
    x = images()
    out = model(x)
    rebuilt = model.reconstruct(x, out)
    pixel_mask = out.mask.view(2, 1, 10, 1, 10, 1).expand(2, 3, 10, 3, 10, 3).reshape(2, 3, 30, 30)
    assert torch.equal(rebuilt[~pixel_mask], x[~pixel_mask])


def test_sincos_positions_are_fixed():
    model = odd_mae()
    assert not model.encoder.pos_embed.weight.requires_grad
    assert "decoder_pos_embed" in dict(model.named_buffers())
    assert torch.equal(model.encoder.pos_embed.weight[0, 0], torch.zeros(36))


transformers = pytest.importorskip("transformers")


def scramble(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if p.ndim > 1:
                p.copy_(noise * 0.02)
            else:
                p.copy_(noise * 0.2 + (1.0 if name.endswith("weight") else 0.0))
    return model.eval()


def hf_odd(**overrides):
    config = transformers.ViTMAEConfig(
        image_size=30, patch_size=3, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
        intermediate_size=72, decoder_hidden_size=20, decoder_num_hidden_layers=2,
        decoder_num_attention_heads=2, decoder_intermediate_size=40, **overrides,
    )  # fmt: skip
    torch.manual_seed(0)
    return scramble(transformers.ViTMAEForPreTraining(config))


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_mae_from_hf_same_noise_same_mask_same_pixels(norm_pix_loss):
    from vitcourse.hub import mae_from_hf

    hf = hf_odd(norm_pix_loss=norm_pix_loss)
    ours = mae_from_hf(hf)
    x = images()
    noise = torch.rand(2, 100, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        theirs, mine = hf(pixel_values=x, noise=noise), ours(x, noise=noise)
        latent, _ = ours.forward_encoder(x, noise)
        hf_latent = hf.vit(pixel_values=x, noise=noise).last_hidden_state
    assert torch.equal(theirs.mask.bool(), mine.mask)
    assert (theirs.logits - mine.pred).abs().max() < 1e-4
    assert (hf_latent - latent).abs().max() < 1e-4
    assert abs(float(theirs.loss - mine.loss)) < 1e-4


def test_mae_from_hf_refuses_other_models():
    from vitcourse.hub import mae_from_hf

    with pytest.raises(ConversionError, match="expected ViTMAEForPreTraining"):
        mae_from_hf(transformers.ViTModel(transformers.ViTConfig(hidden_size=32, num_hidden_layers=1,
                                                                   num_attention_heads=2, intermediate_size=64)))
    with pytest.raises(ConversionError, match="hidden_act"):
        mae_from_hf(hf_odd(hidden_act="relu"))


def test_presets_count_the_parameters_of_hugging_face():
    with torch.device("meta"):
        ours = create_model("mae_vit_base_patch16")
        theirs = transformers.ViTMAEForPreTraining(transformers.ViTMAEConfig())
    fixed = ours.decoder_pos_embed.numel()  # a buffer here, a frozen parameter there
    assert count_parameters(ours) + fixed == count_parameters(theirs)
