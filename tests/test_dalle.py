"""DALL-E's two stages: the dVAE (Gumbel-softmax, tokens, bound) and the caption + image sequence."""

import math

import pytest
import torch

from vitcourse.models import GPT, GPTConfig, create_model
from vitcourse.models.dalle import (
    HELD_OUT,
    CaptionedShapes,
    CaptionTokenizer,
    SequenceLayout,
    bound_terms,
    caption_for,
    generate_images,
    world_layout,
)
from vitcourse.models.dvae import DVAE, DVAEConfig, elbo_terms, gaussian_log_likelihood, kl_to_uniform


def small_dvae() -> DVAE:
    torch.manual_seed(0)
    return DVAE(DVAEConfig(img_size=12, hidden=8, num_tokens=11, codebook_dim=6)).eval()


def test_dvae_shapes_tokens_and_decoding():
    model = small_dvae()
    images = torch.rand(2, 3, 12, 12)
    out = model(images, tau=0.5)
    assert out.logits.shape == (2, 11, 3, 3) and out.recon.shape == (2, 3, 12, 12)
    assert torch.allclose(out.codes.sum(dim=1), torch.ones(2, 3, 3))  # relaxed one-hots
    tokens = model.tokens(images)
    assert tokens.shape == (2, 9) and int(tokens.max()) < 11
    assert torch.equal(tokens, out.logits.argmax(1).flatten(1))
    hard = model.decode(torch.nn.functional.one_hot(tokens, 11).float().transpose(1, 2).reshape(2, 11, 3, 3))
    assert torch.allclose(model.decode_tokens(tokens), hard)
    with pytest.raises(ValueError, match="expected images shaped"):
        model.encode(torch.rand(2, 3, 16, 16))


def test_kl_to_uniform_is_zero_for_uniform_and_ln_k_for_one_hot():
    uniform = torch.zeros(1, 5, 2, 2)
    assert torch.allclose(kl_to_uniform(uniform), torch.zeros(1), atol=1e-6)
    one_hot = torch.full((1, 5, 2, 2), -1e4)
    one_hot[:, 0] = 0
    assert torch.allclose(kl_to_uniform(one_hot), torch.tensor([4 * math.log(5)]), atol=1e-4)


def test_gaussian_log_likelihood_matches_torch_distributions():
    x, mean = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    expected = torch.distributions.Normal(mean, 0.1).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gaussian_log_likelihood(x, mean, 0.1), expected, atol=1e-3)


def test_elbo_terms_add_up():
    terms = elbo_terms(small_dvae(), torch.rand(3, 3, 12, 12))
    assert torch.allclose(terms["elbo"], terms["reconstruction"] - terms["kl"])
    assert (terms["kl"] >= -1e-5).all()


def test_captions_tokenizer_and_held_out_pairs():
    data = CaptionedShapes("train", 200)
    pairs = {(s, c) for s, c in zip(data.shapes.tolist(), data.colors.tolist())}
    from vitcourse.data import COLOR_NAMES, SHAPE_NAMES

    held = {(SHAPE_NAMES.index(s), COLOR_NAMES.index(c)) for s, c in HELD_OUT}
    assert not pairs & held
    assert data.images.shape == (200, 3, 32, 32) and data.images.dtype == torch.uint8
    tokenizer = CaptionTokenizer()
    ids = tokenizer.encode(data.captions[:5])
    assert ids.shape == (5, tokenizer.text_len)
    assert [tokenizer.decode(row) for row in ids] == data.captions[:5]
    assert tokenizer.decode(tokenizer.encode([caption_for("circle", "green")])[0]) == caption_for("circle", "green")
    with pytest.raises(ValueError, match="knows the world's words"):
        tokenizer.encode(["un dragón verde"])


def test_sequence_layout_round_trip():
    layout = SequenceLayout(text_vocab=5, text_len=3, image_vocab=7, image_len=4)
    text, image = torch.tensor([[1, 2, 0]]), torch.tensor([[6, 0, 3, 1]])
    seq = layout.join(text, image)
    assert seq.tolist() == [[12, 1, 2, 0, 11, 5, 8, 6]] and seq.shape[1] == layout.seq_len
    assert torch.equal(layout.image_part(seq), image)


def tiny_stage_two(layout):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=layout.vocab_size, max_seq_len=layout.seq_len, embed_dim=16, depth=1,
                         num_heads=2, dropout=0.0, attn_dropout=0.0)).eval()  # fmt: skip


def test_generate_images_samples_only_image_tokens():
    dvae = small_dvae()
    tokenizer = CaptionTokenizer()
    layout = SequenceLayout(len(tokenizer), tokenizer.text_len, 11, 9)
    transformer = tiny_stage_two(layout)
    text = tokenizer.encode([caption_for("star", "red"), caption_for("ring", "pink")])
    images, tokens = generate_images(transformer, dvae, layout, text, generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 3, 12, 12) and tokens.shape == (2, 9)
    assert 0 <= int(tokens.min()) and int(tokens.max()) < 11


def guided_setup():
    dvae = small_dvae()
    tokenizer = CaptionTokenizer()
    layout = SequenceLayout(len(tokenizer), tokenizer.text_len, 11, 9)
    text = tokenizer.encode([caption_for("star", "red"), caption_for("ring", "pink", 1, 0)])
    return dvae, layout, tiny_stage_two(layout), text


def test_guidance_scale_one_is_plain_sampling():
    dvae, layout, transformer, text = guided_setup()
    plain = generate_images(transformer, dvae, layout, text, generator=torch.Generator().manual_seed(3))
    one = generate_images(transformer, dvae, layout, text, generator=torch.Generator().manual_seed(3),
                          guidance_scale=1.0)  # fmt: skip
    assert torch.equal(plain[1], one[1]) and torch.equal(plain[0], one[0])


def test_guided_sampling_matches_the_formula_without_cache():
    """Two streams with their own caches = recomputing both sequences from scratch."""
    from vitcourse.models.dalle import null_caption
    from vitcourse.models.gpt import sample_next_token

    dvae, layout, transformer, text = guided_setup()
    scale = 3.0
    _, tokens = generate_images(transformer, dvae, layout, text, generator=torch.Generator().manual_seed(5),
                                guidance_scale=scale, top_k=6)  # fmt: skip
    generator = torch.Generator().manual_seed(5)
    cond, uncond = layout.join(text), layout.join(null_caption(2, layout.text_len))
    image = slice(layout.text_vocab, layout.text_vocab + layout.image_vocab)
    with torch.no_grad():
        for _ in range(layout.image_len):
            log_c = transformer(cond)[:, -1, image].log_softmax(-1)
            log_u = transformer(uncond)[:, -1, image].log_softmax(-1)
            logits = torch.full((2, layout.vocab_size), float("-inf"))  # only image codes allowed
            logits[:, image] = log_u + scale * (log_c - log_u)
            token = sample_next_token(logits, top_k=6, generator=generator)
            cond, uncond = torch.cat([cond, token], 1), torch.cat([uncond, token], 1)
    assert torch.equal(tokens, layout.image_part(cond))


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan")])
def test_guidance_scale_must_be_positive(scale):
    dvae, layout, transformer, text = guided_setup()
    with pytest.raises(ValueError, match="guidance_scale must be > 0"):
        generate_images(transformer, dvae, layout, text, guidance_scale=scale)


def test_caption_dropout_empties_captions_and_their_loss():
    from vitcourse.scripts.train_dalle import drop_captions, sequence_loss

    layout = SequenceLayout(text_vocab=5, text_len=3, image_vocab=7, image_len=4)
    text, image = torch.tensor([[1, 2, 3]] * 6), torch.randint(7, (6, 4))
    sequences = layout.join(text, image)
    dropped, captioned = drop_captions(sequences, 3, 0.5, torch.Generator().manual_seed(0))
    assert 0 < int(captioned.sum()) < 6
    assert torch.equal(dropped[captioned], sequences[captioned])
    assert (dropped[~captioned, 1:4] == 0).all()
    assert torch.equal(dropped[:, 0], sequences[:, 0]) and torch.equal(dropped[:, 4:], sequences[:, 4:])
    assert drop_captions(sequences, 3, 0.0, torch.Generator())[1].all()
    model = tiny_stage_two(layout)
    with torch.no_grad():
        image_all = sequence_loss(model, dropped, 3)[2]
        _, text_kept, image_kept = sequence_loss(model, dropped, 3, captioned)
        _, text_only_kept, _ = sequence_loss(model, dropped[captioned], 3)
    assert torch.allclose(image_all, image_kept) and torch.allclose(text_kept, text_only_kept)


def test_bound_terms_are_consistent():
    dvae = small_dvae()
    tokenizer = CaptionTokenizer()
    layout = SequenceLayout(len(tokenizer), tokenizer.text_len, 11, 9)
    transformer = tiny_stage_two(layout)
    text = tokenizer.encode([caption_for("star", "red")] * 2)
    terms = bound_terms(transformer, dvae, layout, torch.rand(2, 3, 12, 12), text, beta=2.0,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.allclose(terms["kl"], terms["text_nll"] + terms["image_nll"] - terms["entropy"])
    assert torch.allclose(terms["bound"], terms["reconstruction"] - 2.0 * terms["kl"])
    assert (terms["entropy"] <= 9 * math.log(11) + 1e-4).all()


def test_world_presets():
    layout = world_layout()
    config = create_model("dalle_tiny").config
    assert config.vocab_size == layout.vocab_size and config.max_seq_len == layout.seq_len == 1 + 9 + 64
    assert create_model("dvae_tiny_32").config.grid_size == 8


def test_rerank_keeps_the_drawing_clip_scores_highest():
    from vitcourse.clip_world import WordTokenizer, encode_images, encode_texts
    from vitcourse.models.dalle import rerank

    torch.manual_seed(0)
    clip, words = create_model("clip_world_tiny").eval(), WordTokenizer()
    captions = [caption_for("star", "red"), caption_for("ring", "pink"), caption_for("circle", "green")]
    images = torch.rand(4, 3, 3, 32, 32)  # 4 drawings of each of 3 captions
    best, index, scores = rerank(clip, words, images, captions)
    assert best.shape == (3, 3, 32, 32) and index.shape == (3,) and scores.shape == (4, 3)
    expected = encode_images(clip, images[:, 1]) @ encode_texts(clip, words, captions[1:2])[0]
    assert torch.allclose(scores[:, 1], expected, atol=1e-5)
    assert torch.equal(index, scores.argmax(0))
    for b in range(3):
        assert torch.equal(best[b], images[index[b], b])
    with pytest.raises(ValueError, match=r"expected images shaped \(N, B, 3, H, W\)"):
        rerank(clip, words, images, captions[:2])


def shipped(*names):
    from vitcourse import checkpoints

    missing = [n for n in names if n not in checkpoints.available()]
    return pytest.mark.skipif(bool(missing), reason=f"{missing} not built yet: see vitcourse/scripts/")


def test_reranker_trains_on_stage_two_pairs_and_records_its_card(tmp_path):
    from vitcourse import checkpoints
    from vitcourse.scripts.train_dalle import RERANKER, reranker_pairs, train_reranker

    pairs = reranker_pairs(40)
    stage_two = CaptionedShapes("train", 40)
    assert pairs.captions == stage_two.captions
    assert torch.equal(pairs.images, stage_two.float_images())
    assert not {p[0] for p in pairs.shapes} & set(HELD_OUT)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        card = train_reranker(steps=2, batch_size=8, train_size=40, test_size=30, root=tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert card["data"]["train_size"] == 40 and card["recipe"]["steps"] == 2
    assert card["data"]["held_out_excluded"] == [list(p) for p in HELD_OUT]
    reads = card["metrics"]["on_real_test_images"]
    assert reads["seen"]["n"] + reads["held_out"]["n"] == reads["n"] == 30
    assert checkpoints.info(RERANKER, root=tmp_path)["sha256"] == card["sha256"]
    checkpoints.load(RERANKER, root=tmp_path)


def test_best_of_one_judges_every_round():
    from vitcourse.clip_world import WordTokenizer
    from vitcourse.scripts.train_dalle import best_of, judge

    torch.manual_seed(0)
    clip = create_model("clip_world_tiny").eval()
    captions = [caption_for("star", "red"), caption_for("ring", "pink")]
    shapes, colors = torch.tensor([3, 5]), torch.tensor([0, 6])
    draws = torch.rand(4, 2, 3, 32, 32)
    one = best_of(clip, WordTokenizer(), draws, captions, shapes, colors, 1)
    assert one["groups"] == 4 and one["both_per_group"] == [judge(d, shapes, colors)["both"] for d in draws]
    two = best_of(clip, WordTokenizer(), draws, captions, shapes, colors, 2)
    assert two["groups"] == 2 and len(two["shape_per_group"]) == 2
    assert two["both"] == pytest.approx(sum(two["both_per_group"]) / 2)


@shipped("clip_world_tiny")
def test_chapter_five_reranker_reads_the_dalle_colours():
    """Chapter 5's mini-CLIP names the colour of real images of DALL-E's world from its captions."""
    from vitcourse.checkpoints import load
    from vitcourse.clip_world import WordTokenizer
    from vitcourse.scripts.train_dalle import reranker_on_real

    real = CaptionedShapes("test", 40, exclude_held_out=False)
    found = reranker_on_real(load("clip_world_tiny"), WordTokenizer(), real)
    assert found["n"] == 40 and found["color"] >= 0.9  # the card: colour 0.9975 on unseen pairs
    assert found["both"] <= min(found["shape"], found["color"])
    assert found["seen"]["n"] + found["held_out"]["n"] == 40


@shipped("clip_dalle_world")
def test_dalle_reranker_card_reevaluated():
    """``clip_dalle_world`` reads shape and colour of the real test images as its card says."""
    from vitcourse import checkpoints
    from vitcourse.clip_world import WordTokenizer
    from vitcourse.scripts.train_dalle import RERANKER, TEST_SIZE, reranker_on_real

    card = checkpoints.info(RERANKER)
    real = CaptionedShapes("test", TEST_SIZE, exclude_held_out=False)
    found = reranker_on_real(checkpoints.load(RERANKER), WordTokenizer(), real)
    recorded = card["metrics"]["on_real_test_images"]
    for group in (found, found["seen"], found["held_out"]):
        key = "held_out" if group is found["held_out"] else "seen" if group is found["seen"] else None
        expected = recorded if key is None else recorded[key]
        assert group["n"] == expected["n"]
        for what in ("shape", "color", "both"):
            assert group[what] == pytest.approx(expected[what], abs=1e-3), (key, what)


@shipped("dalle_world", "dvae_world")
def test_continued_training_records_its_base_and_stops_at_its_budget(tmp_path):
    from vitcourse import checkpoints
    from vitcourse.scripts.train_dalle import total_epochs, train_transformer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = checkpoints.info("dalle_world")
        small = {"batch_size": 32, "train_size": 128, "val_size": 32, "root": tmp_path, "seed": 1}
        # a learning rate of zero changes nothing: not better than the base, not registered
        assert train_transformer(1, lr=0.0, init_from="dalle_world", **small) is None
        assert not (tmp_path / "dalle_world.json").exists()
        card = train_transformer(2, lr=1e-4, init_from="dalle_world", force=True, **small)
        recipe, metrics = card["recipe"], card["metrics"]
        assert recipe["base"]["sha256"] == base["sha256"] and recipe["init_from"] == "dalle_world"
        assert recipe["steps"] == 8 and recipe["epochs"] == 2
        assert recipe["total_epochs"] == total_epochs(card) == pytest.approx(total_epochs(base) + 2)
        assert metrics["history"][: len(base["metrics"]["history"])] == base["metrics"]["history"]
        assert [h["epoch"] for h in metrics["history"][-2:]] == pytest.approx([total_epochs(base) + 1, total_epochs(base) + 2])
        assert metrics["total_train_seconds"] > base["metrics"]["train_seconds"]
        assert checkpoints.info("dalle_world", root=tmp_path)["sha256"] == card["sha256"] != base["sha256"]
        checkpoints.load("dalle_world", root=tmp_path)
        # a budget of 6 ms ends the run long before its 100 epochs, inside the first
        card = train_transformer(100, lr=1e-4, init_from="dalle_world", force=True, max_minutes=1e-4, **small)
        assert 0 < card["recipe"]["steps"] < 4 and card["recipe"]["max_minutes"] == 1e-4
        assert card["recipe"]["total_epochs"] < total_epochs(base) + 1
    finally:
        torch.set_num_threads(threads)


@shipped("dvae_world")
def test_dvae_decoder_stage_freezes_the_tokens_and_gates_registration(tmp_path):
    """Stage 1b trains the decoder only: the new checkpoint's tokens are the base's, bit
    for bit; a run that cannot improve (learning rate 0) is not registered."""
    from vitcourse import checkpoints
    from vitcourse.scripts.train_dalle import FROZEN_PARTS, frozen_fingerprint, train_decoder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        small = {"train_size": 256, "val_size": 32, "test_size": 32, "batch_size": 64, "root": tmp_path}
        assert train_decoder(1e-3, lr=0.0, **small) is None
        assert not (tmp_path / "dvae_world.json").exists()
        card = train_decoder(0.02, epochs=1, force=True, **small)
    finally:
        torch.set_num_threads(threads)
    base, new = checkpoints.load("dvae_world"), checkpoints.load("dvae_world", root=tmp_path)
    images = CaptionedShapes("val", 64, exclude_held_out=False).float_images()
    assert torch.equal(base.tokens(images), new.tokens(images))  # the encoder was frozen
    for name, tensor in base.state_dict().items():
        if name.split(".")[0] in FROZEN_PARTS:
            assert torch.equal(tensor, new.state_dict()[name]), name
    assert any(not torch.equal(p, new.decoder.state_dict()[k]) for k, p in base.decoder.state_dict().items())
    recipe = card["recipe"]
    assert recipe["base"]["sha256"] == checkpoints.info("dvae_world")["sha256"] and recipe["trained"] == "decoder"
    assert recipe["frozen_sha256"] == frozen_fingerprint(base) == frozen_fingerprint(new)
    assert card["metrics"]["before"]["val"]["n"] == 32 and "held_out" in card["metrics"]["val"]


@shipped("dvae_world")
def test_dvae_card_reevaluated():
    """The shipped dVAE's card: its frozen parts and tokens are the ones it records, and
    the hard-token error and the judges' reading of its rebuildings of the real test
    images (seen and held-out pairs apart) are what its weights give."""
    from vitcourse import checkpoints
    from vitcourse.scripts.train_dalle import frozen_fingerprint, rebuild_readings, tokens_fingerprint

    card, model = checkpoints.info("dvae_world"), checkpoints.load("dvae_world")
    test = CaptionedShapes("test", card["data"].get("test_size", 2000), exclude_held_out=False)
    found = rebuild_readings(model, test) if "before" in card["metrics"] else None
    recorded = card["metrics"]["test"]
    if found is None:  # a stage-1a card records the hard-token error only
        from vitcourse.scripts.train_dalle import dvae_metrics

        found = dvae_metrics(model, test.float_images())
        assert found["mse_hard_tokens"] == pytest.approx(recorded["mse_hard_tokens"], rel=1e-3)
        return
    recipe = card["recipe"]
    assert recipe["frozen"] == ["encoder", "codebook"] and frozen_fingerprint(model) == recipe["frozen_sha256"]
    val = CaptionedShapes("val", card["data"]["val_size"], exclude_held_out=False)
    assert tokens_fingerprint(model, val.float_images()) == recipe["val_tokens_sha256"]
    assert found["mse_hard_tokens"] == pytest.approx(recorded["mse_hard_tokens"], rel=1e-3)
    for key in (None, "seen", "held_out"):
        got, expected = (found, recorded) if key is None else (found[key], recorded[key])
        assert got["n"] == expected["n"]
        for what in ("shape", "color", "both"):
            assert got[what] == pytest.approx(expected[what], abs=1e-3), (key, what)


@shipped("dvae_world")
def test_a_run_from_scratch_builds_its_preset_and_records_its_device(tmp_path):
    """``--preset dalle_small`` builds the wider model, its card names it and it loads
    back; the card says where it trained."""
    from vitcourse import checkpoints
    from vitcourse.models import create_model
    from vitcourse.scripts.train_dalle import train_transformer

    tiny, wide = create_model("dalle_tiny"), create_model("dalle_small")
    assert (wide.config.embed_dim, wide.config.depth, wide.config.num_heads) == (192, 6, 6)
    assert wide.config.vocab_size == tiny.config.vocab_size and wide.config.max_seq_len == tiny.config.max_seq_len
    assert 5 < sum(p.numel() for p in wide.parameters()) / sum(p.numel() for p in tiny.parameters()) < 7
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        card = train_transformer(1, batch_size=32, train_size=64, val_size=32, root=tmp_path, preset="dalle_small",
                                 caption_dropout=0.15)  # fmt: skip
        assert card["model"] == "dalle_small" and card["recipe"]["device"] == "cpu"
        assert card["recipe"]["steps"] == 2 and "D=192, 6 blocks" in card["description"]
        assert checkpoints.load("dalle_world", root=tmp_path).config.embed_dim == 192
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["transformer", "--device", "cuda"], "needs a GPU"),
        (["transformer", "--train-size", "100", "--batch-size", "128"], "--batch-size must be between 1 and"),
    ],
)
def test_transformer_options_refused_with_what_to_do(argv, says, capsys, monkeypatch):
    from vitcourse.scripts.train_dalle import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        main(argv)
    assert says in capsys.readouterr().err


def test_a_cpu_generator_draws_the_same_tokens_for_logits_elsewhere(monkeypatch):
    """``sample_next_token`` draws on the generator's device when the logits live on
    another one (a model on CUDA, a seed on the CPU). With no GPU here, the probabilities
    claim another device: the draw must move them to the generator's and give the same
    tokens as an all-CPU draw."""
    from vitcourse.models.gpt import sample_next_token

    logits = torch.randn(4, 50)
    expected = sample_next_token(logits, generator=torch.Generator().manual_seed(3))
    elsewhere = torch.device("cuda")
    real_device, real_to = torch.Tensor.device, torch.Tensor.to
    moves = []

    def device(self):  # the (4, 50) logits and probabilities claim to be on the GPU
        return elsewhere if self.shape == (4, 50) else real_device.__get__(self)

    def to(self, target, *args, **kwargs):
        moves.append(target)
        return self if target in (elsewhere, torch.device("cpu")) else real_to(self, target, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "device", property(device))
    monkeypatch.setattr(torch.Tensor, "to", to)
    drawn = sample_next_token(logits, generator=torch.Generator().manual_seed(3))
    monkeypatch.undo()
    assert moves == [torch.device("cpu"), elsewhere]  # to the generator, and back
    assert torch.equal(drawn, expected)
