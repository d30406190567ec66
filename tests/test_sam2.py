"""SAM 2's parts: shapes at odd sizes, the memory bank's FIFO, streaming equals batch, videos."""

from __future__ import annotations

import pytest
import torch

from vitcourse.data.video import VideoConfig, generate_video, visible_fraction
from vitcourse.models import create_model
from vitcourse.models.sam2 import (
    MemoryAttention,
    MemoryBank,
    MemoryEncoder,
    MemoryEntry,
    VideoPredictor,
    track_video,
)
from vitcourse.models.sam2.training import (
    click_prompt,
    frame_ious,
    reappearance_frame,
    track_loss,
    unroll,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = create_model("sam2_mini").eval()
    # non-zero memory-attention outputs, so that the memory changes the masks
    with torch.no_grad():
        for p in m.memory_attention.parameters():
            p.add_(0.05 * torch.randn_like(p))
        m.time_embed.normal_(0, 0.5)
    return m


@pytest.fixture(scope="module")
def video():
    return generate_video((0, 9, 1), VideoConfig(num_frames=5))


def _resolve(module, dotted):
    for name in dotted.split("."):
        module = getattr(module, name, None)
    return module


def _entry(frame, prompted=False):
    return MemoryEntry(frame, torch.full((1, 3, 2, 2), float(frame)), torch.zeros(1, 3), prompted)


def test_memory_encoder_shapes_at_odd_sizes():
    encoder = MemoryEncoder(embed_dim=24, memory_dim=12, num_fuser_blocks=1)
    features = torch.randn(3, 24, 5, 7)
    out = encoder(features, torch.randn(3, 1, 20, 28))
    assert out.shape == (3, 12, 5, 7)
    with pytest.raises(ValueError, match="2\\^mask_halvings"):
        encoder(features, torch.randn(3, 1, 10, 14))


def test_memory_attention_shapes_and_gradients():
    attention = MemoryAttention(embed_dim=24, memory_dim=12, depth=2, num_heads=3)
    features, pos = torch.randn(2, 24, 5, 7), torch.randn(1, 24, 5, 7)
    memory, memory_pos = torch.randn(2, 37, 12), torch.randn(2, 37, 24)
    out = attention(features, pos, memory, memory_pos)
    assert out.shape == features.shape
    assert not torch.allclose(out, features)  # the memory changes the features
    out.sum().backward()
    assert attention.memory_proj.weight.grad.abs().sum() > 0
    assert attention.layers[1].cross_attn.qkv.weight.grad.abs().sum() > 0
    # the other memory changes only what reads it: a different video, a different output
    other = attention(features, pos, memory.flip(1), memory_pos)
    assert not torch.allclose(other, out)
    with pytest.raises(ValueError, match="memory"):
        attention(features, pos, memory[:1], memory_pos[:1])


def test_bank_keeps_the_latest_frames_and_every_prompted_one():
    bank = MemoryBank(num_recent=2, max_prompted=2)
    bank.add(_entry(0, prompted=True))
    for t in range(1, 6):
        bank.add(_entry(t))
    assert bank.frames() == [0, 4, 5]  # FIFO of 2, the prompted frame stays
    bank.add(_entry(4, prompted=True))  # a correction on a remembered frame replaces it
    assert bank.frames() == [0, 4, 5]
    assert [e.prompted for e in bank.entries()] == [True, True, False]
    bank.add(_entry(7, prompted=True))
    assert bank.frames() == [4, 7, 5]  # max_prompted: the oldest prompted frame leaves
    bank.clear()
    assert len(bank) == 0
    with pytest.raises(ValueError, match="num_recent"):
        MemoryBank(num_recent=-1)


def test_memory_tokens_hold_every_frame_and_pointer(model, video):
    features = model.encode_frames(video.frames[:3])
    bank = model.new_bank()
    for t in range(3):
        model.track_step(features[t : t + 1], bank, t, **(click_prompt(video.target[:1]) if t == 0 else {}))
    memory, pos = model.memory_tokens(bank, frame=3)
    g = model.sam.config.embedding_size
    assert memory.shape == (1, 3 * g * g + 3, model.config.memory_dim)
    assert pos.shape == (1, 3 * g * g + 3, model.sam.config.prompt_dim)
    assert model.memory_tokens(model.new_bank(), frame=0) is None


def test_streaming_equals_batch(model, video):
    frames = torch.stack([video.frames, video.frames.flip(-1)])  # (2, T, 3, S, S)
    targets = torch.stack([video.target, video.target.flip(-1)])
    prompts = {0: click_prompt(targets[:, 0]), 3: click_prompt(targets[:, 3])}
    batch, held = track_video(model, frames, prompts)
    predictor = VideoPredictor(model)
    for t in range(frames.shape[1]):
        out = predictor.step(frames[:, t], **prompts.get(t, {}))
        torch.testing.assert_close(out.mask_logits[:, 0], batch[:, t], atol=1e-4, rtol=1e-4)
    assert held[-1] == [0, 3, 1, 2, 4]
    # each video alone gives what it gave in the batch
    alone, _ = track_video(model, frames[1:], {t: {k: v[1:] for k, v in p.items()} for t, p in prompts.items()})
    torch.testing.assert_close(alone[0], batch[1], atol=1e-4, rtol=1e-4)


def test_memory_changes_the_masks_and_can_be_switched_off(model, video):
    prompts = {0: click_prompt(video.target[:1])}
    with_memory, _ = track_video(model, video.frames[None], prompts)
    without, held = track_video(model, video.frames[None], prompts, use_memory=False)
    torch.testing.assert_close(with_memory[:, 0], without[:, 0])  # frame 0: nothing remembered yet
    assert not torch.allclose(with_memory[:, 1:], without[:, 1:])
    assert all(h == [t] for t, h in enumerate(held))


def test_bad_inputs_say_what_was_expected(model, video):
    with pytest.raises(ValueError, match="first frame needs a prompt"):
        track_video(model, video.frames[None], {})
    with pytest.raises(ValueError, match="resize"):
        VideoPredictor(model).step(torch.rand(1, 3, 32, 32))


def test_training_step_reaches_the_memory_and_the_decoder(video):
    model = create_model("sam2_mini")
    features = model.encode_frames(video.frames).detach()[None]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # the memory attention's zero projections first learn alone
        optimizer.zero_grad()
        logits, iou = unroll(model, features, {0: click_prompt(video.target[:1], "box")})
        loss, parts = track_loss(logits, iou, video.target[None])
        loss.backward()
        optimizer.step()
    assert set(parts) == {"mask", "iou"}
    assert model.memory_attention.layers[0].cross_attn.proj.weight.grad.abs().sum() > 0
    assert model.memory_encoder.out_proj.weight.grad.abs().sum() > 0
    assert model.sam.mask_decoder.iou_token.weight.grad is not None


def test_videos_are_deterministic_and_annotated():
    config = VideoConfig(img_size=48, num_frames=7, num_distractors=2)
    a, b = generate_video((1, 2, 3), config), generate_video((1, 2, 3), config)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.masks, b.masks)
    assert a.frames.shape == (7, 3, 48, 48) and a.masks.shape == (7, 4, 48, 48)
    assert visible_fraction(a.target)[0] >= 0.5
    assert not torch.equal(a.frames, generate_video((1, 2, 4), config).frames)
    # instance masks never overlap: each pixel belongs to one shape at most
    assert int(a.masks.sum(1).max()) <= 1
    # across many videos the occluder hides most of the target at least once
    hidden = [visible_fraction(generate_video((0, 9, i)).target).min() < 0.25 for i in range(20)]
    assert sum(hidden) >= 5
    with pytest.raises(ValueError, match="num_frames"):
        VideoConfig(num_frames=1)


def test_first_frame_shows_the_target_whole_when_asked():
    from vitcourse.models.sam2.training import training_window

    loose, strict = VideoConfig(num_frames=8), VideoConfig(num_frames=8, first_unoccluded=0.95)
    videos = [generate_video((0, 9, i), strict) for i in range(6)]
    assert all(v.first_unoccluded >= 0.95 for v in videos)
    assert min(generate_video((0, 9, i), loose).first_unoccluded for i in range(20)) < 0.95
    # a training window starts at 0 or where every video of the batch shows the target
    targets = torch.stack([v.target for v in videos])
    generator = torch.Generator().manual_seed(0)
    starts = {training_window(targets, 4, generator, min_pixels=20) for _ in range(30)}
    assert 0 in starts and len(starts) > 1
    for s in starts:
        assert s == 0 or bool((targets[:, s].flatten(1).sum(1) >= 20).all())


def test_frame_iou_and_reappearance():
    target = torch.zeros(4, 8, 8, dtype=torch.bool)
    target[0, :4, :4] = target[3, :4, :4] = True
    target[1, 0, 0] = True
    logits = torch.where(target, 1.0, -1.0)
    assert frame_ious(logits, target).tolist() == [1.0, 1.0, 1.0, 1.0]  # empty and empty: right
    logits[2, 0, 0] = 1.0
    assert frame_ious(logits, target)[2] == 0.0  # something where nothing is
    assert reappearance_frame(target) == 3
    assert reappearance_frame(target[[0, 3]]) is None


def test_hf_sam2_video_tiny_runs_offline_with_the_same_parts(model, video):
    pytest.importorskip("transformers")
    from transformers import Sam2VideoModel

    from vitcourse.models.sam2.hf import HF_MODULES, hf_track, tiny_hf_config, tiny_hf_processor

    torch.manual_seed(0)
    config = tiny_hf_config()
    assert config.memory_encoder_output_channels == 64 and config.vision_config.fpn_hidden_size > 64
    hf = Sam2VideoModel(config).eval()
    masks, bank = hf_track(hf, tiny_hf_processor(), video.frames, (20.0, 30.0))
    assert masks.shape == (5, 16, 16) and torch.isfinite(masks).all()
    assert bank == {"cond": [0], "non_cond": [1, 2, 3, 4]}
    for ours, theirs in HF_MODULES.items():  # every named part exists on both sides
        assert _resolve(model, ours) is not None and _resolve(hf, theirs) is not None, (ours, theirs)
    with pytest.raises(ValueError, match="multiple of memory_dim"):
        tiny_hf_config(hidden_size=64)


def test_video_data_from_card_inverts_as_dict():
    from vitcourse.models.sam2.training import VideoData

    data = VideoData(img_size=32, train_frames=4, test_frames=9, num_distractors=2, seed=3)
    card = {**data.as_dict(), "train_size": 10, "test_split": 2}  # a card's other keys
    assert VideoData.from_card(card) == data
    assert VideoData.from_card({"seed": 5}) == VideoData(seed=5)  # missing keys: defaults


def test_recovery_windows_and_error_clicks(video):
    from vitcourse.models.sam2.training import error_click, recovery_windows

    # a corrective click lands on the error: a missed object pixel (1) or a false one (0)
    target = torch.zeros(2, 8, 8, dtype=torch.bool)
    target[:, 2:5, 2:5] = True
    logits = torch.full((2, 8, 8), -1.0)
    logits[1, 6, 6] = 1.0
    logits[1, 2:5, 2:5] = 1.0  # video 1: the object found, one false pixel
    generator = torch.Generator().manual_seed(0)
    click = error_click(logits, target, generator)
    assert click["points"].shape == (2, 1, 2) and click["labels"].tolist() == [[1], [0]]
    x, y = (int(v) for v in click["points"][0, 0])
    assert bool(target[0, y, x]) and click["points"][1, 0].tolist() == [6.0, 6.0]
    # every recovery clip starts k frames before its video's reappearance, showing the target
    targets = torch.zeros(3, 12, 8, 8, dtype=torch.bool)
    targets[:, :, 2:6, 2:6] = True
    reappears = torch.tensor([9, -1, 7])
    for _ in range(10):
        drawn = recovery_windows(targets, reappears, 6, 4, generator, min_pixels=4)
        if drawn is None:
            continue
        videos, starts, k = drawn
        assert 3 <= k < 6 and set(videos.tolist()) <= {0, 2}
        assert (starts == reappears[videos] - k).all() and (starts >= 0).all() and (starts <= 6).all()
    # a training step with the click on the reappearance frame reaches the decoder
    model = create_model("sam2_mini")
    features = model.encode_frames(video.frames).detach()[None]
    prompts = {0: click_prompt(video.target[:1], "box")}
    logits, _ = unroll(model, features, prompts, 3, video.target[None], generator)
    logits.sum().backward()
    assert model.sam.mask_decoder.iou_token.weight.grad is not None


def test_compare_runs_pairs_videos_and_refuses_other_videos():
    from vitcourse.models.sam2.training import compare_runs
    from vitcourse.scripts.train_sam2 import continuation_meets

    def result(with_memory, memory, memory_click, videos=(0, 2)):
        recovery = {"video": list(videos), "memory": memory, "memory_click": memory_click}
        return {"with_memory": with_memory, "recovery": recovery}

    before = result([[0.2, 0.4], [0.6, 0.6], [0.1, 0.1]], [0.1, 0.3], [0.2, 0.2])
    after = result([[0.4, 0.4], [0.6, 0.8], [0.2, 0.2]], [0.3, 0.3], [0.5, 0.7])
    paired = compare_runs(before, after)
    assert paired["videos"] == 3 and paired["recovery_videos"] == 2
    assert paired["miou_with_memory_gain_mean"] == pytest.approx(0.1)  # +0.1 on each video
    assert paired["miou_with_memory_gain_sem"] == pytest.approx(0.0, abs=1e-12)
    assert paired["recovery_memory_click_gain_mean"] == pytest.approx(0.4)
    assert paired["recovery_memory_click_gain_sem"] == pytest.approx(0.1)  # std 0.1414 / sqrt 2
    assert paired["recovery_memory_click_before"] == pytest.approx(0.2)
    assert continuation_meets(paired)  # +0.4 > 2 * 0.1 and the tracking did not drop
    worse = compare_runs(after, before)
    assert not continuation_meets(worse)
    with pytest.raises(ValueError, match="same videos"):
        compare_runs(before, result([[0.2, 0.4]], [0.1, 0.3], [0.2, 0.2]))
    with pytest.raises(ValueError, match="same videos"):
        compare_runs(before, result([[0.2, 0.4], [0.6, 0.6], [0.1, 0.1]], [0.1], [0.2], videos=(1,)))
