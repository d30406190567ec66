"""Diffusion: the schedule against diffusers' schedulers, the DiT, guidance, the port from
diffusers' DiTTransformer2DModel, MM-DiT's joint attention and DiffusionCLIP's loss."""

from __future__ import annotations

import pytest
import torch

from vitcourse.layers import sincos_2d_encoding
from vitcourse.models import create_model
from vitcourse.models.diffusion import (
    DiT,
    DiTConfig,
    MMDiTBlock,
    NoiseSchedule,
    diffusion_loss,
    directional_loss,
    dit_from_diffusers,
    guided_eps,
    joint_attention,
    sample,
)

diffusers = pytest.importorskip("diffusers")

# oddly sized on purpose: 12x12 images, 3 channels, patch 2, D=36 (3 heads of 12), 7 classes
ODD = DiTConfig(img_size=12, patch_size=2, in_chans=3, embed_dim=36, depth=2, num_heads=3, num_classes=7)


def _randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter random (adaLN-Zero would make the blocks identities)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


def test_add_noise_equals_diffusers():
    ours, theirs = NoiseSchedule(), diffusers.DDPMScheduler()
    torch.testing.assert_close(ours.alphas_cumprod.float(), theirs.alphas_cumprod, rtol=0, atol=0)
    x0, noise = torch.rand(4, 1, 6, 6) * 2 - 1, torch.randn(4, 1, 6, 6)
    t = torch.tensor([0, 10, 500, 999])
    torch.testing.assert_close(ours.add_noise(x0, noise, t), theirs.add_noise(x0, noise, t))


def test_closed_form_equals_step_by_step_noising():
    """T single steps q(x_t | x_{t-1}) give the closed form's mean and variance."""
    s = NoiseSchedule()
    x0 = torch.full((20000,), 0.7)
    g = torch.Generator().manual_seed(0)
    x = x0.clone()
    for t in range(300):
        x = (1 - s.betas[t]).sqrt().float() * x + s.betas[t].sqrt().float() * torch.randn(x.shape, generator=g)
    a = float(s.alphas_cumprod[299])
    assert abs(float(x.mean()) - a**0.5 * 0.7) < 0.02
    assert abs(float(x.var()) - (1 - a)) < 0.03


def test_ddpm_steps_equal_diffusers():
    ours, theirs = NoiseSchedule(), diffusers.DDPMScheduler()
    theirs.set_timesteps(1000)
    x, eps = torch.randn(2, 1, 6, 6), torch.randn(2, 1, 6, 6) * 0.5
    for t in (999, 500, 3, 1, 0):
        a = ours.ddpm_step(eps, t, x, torch.Generator().manual_seed(t))
        b = theirs.step(eps, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        # diffusers does the arithmetic in float32, we in float64: at t = 999, 1/√ᾱ_t ≈ 160
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_ddim_loop_equals_diffusers():
    ours, theirs = NoiseSchedule(), diffusers.DDIMScheduler()
    theirs.set_timesteps(20)
    assert ours.ddim_timesteps(20) == theirs.timesteps.tolist()

    def fake_eps(x, t):  # any deterministic function of (x, t)
        return torch.tanh(x * 0.3 + t / 1000)

    a = b = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    for t in ours.ddim_timesteps(20):
        a = ours.ddim_step(fake_eps(a, t), t, t - 50, a)
        b = theirs.step(fake_eps(b, t), t, b).prev_sample
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_bad_schedule_inputs_say_what_to_do():
    with pytest.raises(ValueError, match="DDPM uses 1000"):
        NoiseSchedule(num_steps=1000, beta_start=0.1, beta_end=0.01)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1000\)"):
        NoiseSchedule().add_noise(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), torch.tensor([1000]))


def test_dit_forward_backward_and_shapes():
    model = DiT(ODD)
    x, t, y = torch.randn(5, 3, 12, 12), torch.randint(0, 1000, (5,)), torch.tensor([0, 1, 6, 7, 3])
    out = model(x, t, y)
    assert out.shape == x.shape
    loss = diffusion_loss(model, NoiseSchedule(), x.clamp(-1, 1), y)
    loss.backward()
    assert model.final_layer.linear.weight.grad.abs().sum() > 0


def test_adaln_zero_starts_as_identity():
    """At initialisation every block is the identity and the prediction is zero."""
    model = DiT(ODD).eval()
    tokens, c = torch.randn(2, 36, 36), torch.randn(2, 36)
    torch.testing.assert_close(model.blocks[0](tokens, c), tokens)
    assert model(torch.randn(2, 3, 12, 12), torch.tensor([5, 9]), torch.tensor([1, 2])).abs().max() == 0


def test_label_dropout_and_guidance():
    model = _randomised(DiT(ODD))
    x, y = torch.randn(3, 3, 12, 12), torch.tensor([0, 4, 6])
    null = torch.full_like(y, model.null_label)
    t = torch.full((3,), 123)
    cond, uncond = model(x, t, y), model(x, t, null)
    assert not torch.allclose(cond, uncond)
    model.train()
    model.config.class_dropout = 1.0  # every label dropped: the unconditional prediction
    torch.testing.assert_close(model(x, t, y), uncond)
    model.eval()
    torch.testing.assert_close(guided_eps(model, x, 123, y, 0.0), uncond)
    torch.testing.assert_close(guided_eps(model, x, 123, y, 1.0), cond)
    torch.testing.assert_close(guided_eps(model, x, 123, y, 3.0), uncond + 3 * (cond - uncond), rtol=1e-5, atol=1e-5)


def test_sampling_is_seeded_and_in_range():
    model = _randomised(DiT(ODD))
    labels = torch.tensor([0, 1])
    a = sample(model, NoiseSchedule(), labels, 2.0, 4, generator=torch.Generator().manual_seed(0))
    b = sample(model, NoiseSchedule(), labels, 2.0, 4, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 3, 12, 12) and torch.equal(a, b) and a.abs().max() <= 1
    c, trajectory = sample(model, NoiseSchedule(), labels, 2.0, 4, method="ddpm",
                           generator=torch.Generator().manual_seed(0), return_trajectory=True)  # fmt: skip
    assert len(trajectory) == 1001 and c.shape == a.shape


def test_dit_errors_say_what_was_expected():
    with pytest.raises(ValueError, match="patch_size=5 must divide img_size=28"):
        DiT(DiTConfig(patch_size=5))
    model = DiT(ODD)
    with pytest.raises(ValueError, match=r"labels must be \(2,\) ints in \[0, 7\]"):
        model(torch.randn(2, 3, 12, 12), torch.tensor([1, 2]), torch.tensor([0, 8]))


def test_shipped_preset_size():
    model = create_model("dit_fashion_tiny", embed_dim=96, depth=6, num_heads=4)
    assert 1_000_000 < sum(p.numel() for p in model.parameters()) < 3_000_000


def _tiny_diffusers_dit(norm_eps: float = 1e-6):
    torch.manual_seed(0)
    hf = diffusers.DiTTransformer2DModel(
        num_attention_heads=3, attention_head_dim=12, in_channels=3, num_layers=2, sample_size=12,
        patch_size=2, num_embeds_ada_norm=7, norm_eps=norm_eps,
    )  # fmt: skip
    _randomised(hf)
    first = hf.transformer_blocks[0].norm1.emb
    for block in hf.transformer_blocks[1:]:  # converted DiT checkpoints share one embedder
        block.norm1.emb.load_state_dict(first.state_dict())
    return hf


def test_port_from_diffusers_differs_only_in_the_timestep_frequencies():
    hf = _tiny_diffusers_dit()
    ours = dit_from_diffusers(hf)
    x, t, y = torch.randn(3, 3, 12, 12), torch.tensor([0, 17, 999]), torch.tensor([0, 6, 7])
    with torch.no_grad():
        theirs, mine = hf(x, t, y).sample, ours(x, t, y)
        # the one difference in numbers: diffusers' DiT divides the frequencies by 127, DiT by 128
        assert (theirs - mine).abs().max() > 1e-2
        for block in hf.transformer_blocks:
            block.norm1.emb.time_proj = diffusers.models.embeddings.Timesteps(256, True, downscale_freq_shift=0)
        torch.testing.assert_close(hf(x, t, y).sample, mine, rtol=1e-5, atol=1e-5)


def test_diffusers_positions_are_ours_reordered():
    """The same sines and cosines in another order: theirs is columns then rows, each [sin | cos];
    ours rows then columns, each interleaved sin, cos."""
    hf = _tiny_diffusers_dit()
    theirs, ours = hf.pos_embed.pos_embed[0], sincos_2d_encoding(6, 6, 36)  # (N, D) each
    q = 36 // 4  # frequencies per axis
    order = [18 + 2 * k for k in range(q)] + [18 + 2 * k + 1 for k in range(q)]  # column: sin, cos
    order += [2 * k for k in range(q)] + [2 * k + 1 for k in range(q)]  # row: sin, cos
    torch.testing.assert_close(theirs, ours[:, order], rtol=0, atol=1e-5)
    assert not torch.allclose(theirs, ours)


def test_port_refuses_blocks_with_different_embedders():
    hf = _tiny_diffusers_dit()
    with torch.no_grad():
        hf.transformer_blocks[1].norm1.emb.class_embedder.embedding_table.weight.add_(1)
    with pytest.raises(ValueError, match="shares one embedder"):
        dit_from_diffusers(hf)


def test_mmdit_joint_attention_mixes_both_modalities():
    block = _randomised(MMDiTBlock(embed_dim=24, num_heads=3, mlp_ratio=2.0))
    c, x, y = torch.randn(2, 5, 24), torch.randn(2, 9, 24), torch.randn(2, 24)
    c_out, x_out, weights = block(c, x, y, return_attention=True)
    assert c_out.shape == (2, 5, 24) and x_out.shape == (2, 9, 24)
    assert weights.shape == (2, 3, 14, 14)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 14))
    assert weights[..., 5:, :5].sum() > 0.1 and weights[..., :5, 5:].sum() > 0.1  # image→text and text→image
    # changing only the text changes the image tokens, and the other way round
    _, x_other = block(c + torch.randn_like(c), x, y)
    c_other, _ = block(c, x + torch.randn_like(x), y)
    assert (x_other - x_out).abs().max() > 1e-3 and (c_other - c_out).abs().max() > 1e-3


def test_joint_attention_matches_one_attention_over_the_concatenation():
    """With the same weights on both streams, joint attention is plain self-attention on [c; x]."""
    block = _randomised(MMDiTBlock(embed_dim=24, num_heads=3))
    attn = block.image["attn"]
    c, x = torch.randn(2, 5, 24), torch.randn(2, 9, 24)
    c_out, x_out, _ = joint_attention(attn, attn, c, x)
    torch.testing.assert_close(torch.cat([c_out, x_out], dim=1), attn(torch.cat([c, x], dim=1)), rtol=1e-5, atol=1e-5)


def test_directional_loss_formula():
    i_ref, t_ref = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([1.0, 0.0, 0.0])
    t_tar = torch.tensor([0.0, 1.0, 0.0])
    same = directional_loss(torch.tensor([[0.0, 1.0, 0.0]]), i_ref, t_tar, t_ref)
    # ΔT = (-1, 1, 0) and ΔI = (1, -1, 0): opposite directions, 1 - cos = 2
    opposite = directional_loss(torch.tensor([[2.0, -1.0, 0.0]]), i_ref, t_tar, t_ref, normalize=False)
    torch.testing.assert_close(same, torch.tensor([0.0]))
    torch.testing.assert_close(opposite, torch.tensor([2.0]))
    with pytest.raises(ValueError, match="must share a shape"):
        directional_loss(torch.zeros(2, 3), torch.zeros(3, 3), t_tar, t_ref)


def test_directional_loss_on_mini_clip_prefers_the_described_edit():
    """red star → blue star follows "una estrella roja" → "una estrella azul"; red star → red circle does not."""
    from vitcourse import checkpoints
    from vitcourse.clip_world import WordTokenizer, encode_images, encode_texts
    from vitcourse.data.world import WorldConfig, generate

    clip = checkpoints.load("clip_world_tiny")

    def images(shape, color):
        world = WorldConfig(img_size=32, min_shapes=1, max_shapes=1, shapes=(shape,), colors=(color,))
        return torch.stack([generate((7, 0, i), world).image for i in range(16)])

    ref, edited, wrong = images("star", "red"), images("star", "blue"), images("circle", "red")
    words = WordTokenizer()
    t_ref, t_tar = encode_texts(clip, words, ["una estrella roja", "una estrella azul"])
    right = directional_loss(encode_images(clip, edited), encode_images(clip, ref), t_tar, t_ref)
    off = directional_loss(encode_images(clip, wrong), encode_images(clip, ref), t_tar, t_ref)
    assert right.mean() < off.mean() - 0.2
