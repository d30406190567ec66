"""CLIP: the loss against the paper's pseudocode and Hugging Face's, the converters,
the presets' sizes, the real tokenizer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vitcourse.hub import ConversionError, clip_from_hf, clip_to_hf, clip_tokenizer
from vitcourse.models import CLIP, CLIPConfig, clip_loss, count_parameters, create_model
from vitcourse.models.registry import get_config

TINY = {
    "embed_dim": 12,
    "img_size": 30,
    "patch_size": 3,
    "vision_width": 32,
    "vision_depth": 2,
    "vision_heads": 2,
    "vocab_size": 99,
    "context_length": 13,
    "text_width": 36,
    "text_depth": 2,
    "text_heads": 3,
    "mlp_ratio": 37 / 36,
    "eot_token_id": 98,
}


def _tiny(**overrides) -> CLIP:
    torch.manual_seed(0)
    return CLIP(CLIPConfig(**{**TINY, **overrides})).eval()


def _ids(batch: int, length: int, eot: int = 98, vocab: int = 98) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (batch, length), generator=g)
    ends = torch.randint(1, length, (batch,), generator=g)
    ids[torch.arange(batch), ends] = eot  # one end-of-text per row, padding after it
    return ids


def _numpy_pseudocode(I_f, T_f, t):
    """The paper's Figure 3, transcribed to NumPy (W_i, W_t already applied)."""

    def l2_normalize(x, axis):
        return x / np.linalg.norm(x, axis=axis, keepdims=True)

    def cross_entropy(logits, labels, axis):
        logp = logits - logits.max(axis=axis, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=axis, keepdims=True))
        n = len(labels)
        picked = logp[labels, np.arange(n)] if axis == 0 else logp[np.arange(n), labels]
        return -picked.mean()

    I_e = l2_normalize(I_f, axis=1)
    T_e = l2_normalize(T_f, axis=1)
    logits = np.dot(I_e, T_e.T) * np.exp(t)
    n = I_f.shape[0]
    labels = np.arange(n)
    loss_i = cross_entropy(logits, labels, axis=0)
    loss_t = cross_entropy(logits, labels, axis=1)
    return (loss_i + loss_t) / 2


def test_clip_loss_equals_numpy_pseudocode():
    g = torch.Generator().manual_seed(0)
    I_f = torch.randn(7, 5, generator=g, dtype=torch.float64)
    T_f = torch.randn(7, 5, generator=g, dtype=torch.float64)
    for t in (0.0, math.log(1 / 0.07), math.log(100)):
        ours = clip_loss(I_f, T_f, torch.tensor(t, dtype=torch.float64))
        expected = _numpy_pseudocode(I_f.numpy(), T_f.numpy(), t)
        assert float(ours) == pytest.approx(expected, rel=1e-12)


def test_clip_loss_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="one row per"):
        clip_loss(torch.randn(3, 4), torch.randn(2, 4), torch.tensor(1.0))


def test_loss_equals_hf_clipmodel_loss():
    ours = _tiny()
    hf = clip_to_hf(ours).eval()
    images = torch.randn(5, 3, 30, 30)
    ids = _ids(5, 11)
    with torch.no_grad():
        expected = hf(input_ids=ids, pixel_values=images, return_loss=True).loss
        got = ours.loss(images, ids)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_logit_scale_is_clamped_at_100():
    model = _tiny()
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert float(model.clamped_logit_scale().detach().exp()) == pytest.approx(100.0)
    assert model.temperature == pytest.approx(0.01)
    images, ids = torch.randn(2, 3, 30, 30), _ids(2, 9)
    with torch.no_grad():
        logits = model(images, ids)
    assert logits.abs().max() <= 100.0 + 1e-4
    assert _tiny().temperature == pytest.approx(0.07)


def test_shapes_and_eot_pooling():
    model = _tiny()
    images, ids = torch.randn(3, 3, 30, 30), _ids(4, 10)
    assert model.encode_image(images).shape == (3, 12)
    assert model(images, ids).shape == (3, 4)
    # tokens after the end-of-text token don't change the features (causal mask)
    changed = ids.clone()
    after = torch.arange(10)[None] > model.eot_positions(ids)[:, None]
    changed[after] = 5
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(changed), model.encode_text(ids))
    # eot_token_id=None reads the largest id, as OpenAI's code does
    argmax = _tiny(eot_token_id=None)
    assert torch.equal(argmax.eot_positions(ids), model.eot_positions(ids))
    with pytest.raises(ValueError, match="no end-of-text token"):
        model.encode_text(torch.zeros(2, 5, dtype=torch.long))


def test_hf_round_trip_tiny():
    ours = _tiny()
    with torch.no_grad():
        ours.logit_scale.fill_(3.1)
    hf = clip_to_hf(ours).eval()
    back = clip_from_hf(hf).eval()
    images, ids = torch.randn(2, 3, 30, 30), _ids(3, 13)
    with torch.no_grad():
        hf_img = hf.get_image_features(pixel_values=images)
        hf_txt = hf.get_text_features(input_ids=ids)
        hf_img = getattr(hf_img, "pooler_output", hf_img)
        hf_txt = getattr(hf_txt, "pooler_output", hf_txt)
        torch.testing.assert_close(ours.encode_image(images), hf_img, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.encode_text(ids), hf_txt, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(back(images, ids), ours(images, ids))
    assert back.config == ours.config
    assert float(hf.logit_scale.detach()) == pytest.approx(3.1)


def test_from_hf_refuses_what_differs():
    from transformers import CLIPModel

    hf_config = clip_to_hf(_tiny()).config
    hf_config.text_config.hidden_act = "gelu"
    with pytest.raises(ConversionError, match="hidden_act"):
        clip_from_hf(CLIPModel(hf_config))
    with pytest.raises(ConversionError, match="expected CLIPModel"):
        clip_from_hf(torch.nn.Linear(2, 2))


@pytest.mark.slow
def test_hf_parity_vit_b32_random_weights():
    """ViT-B/32 size, random weights: features equal to 1e-4 both ways."""
    from transformers import CLIPModel

    from vitcourse.hub.clip import _hf_config

    torch.manual_seed(0)
    hf = CLIPModel(_hf_config(get_config("clip_vit_base_patch32"))).eval()
    ours = clip_from_hf(hf).eval()
    back = clip_to_hf(ours).eval()
    tok = clip_tokenizer()
    ids = tok(
        ["a photo of a cat", "un círculo rojo grande arriba a la izquierda"],
        padding="max_length",
        max_length=77,
        return_tensors="pt",
    ).input_ids
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        for model in (hf, back):
            img = model.get_image_features(pixel_values=images)
            txt = model.get_text_features(input_ids=ids)
            img = getattr(img, "pooler_output", img)
            txt = getattr(txt, "pooler_output", txt)
            torch.testing.assert_close(ours.encode_image(images), img, atol=1e-4, rtol=0)
            torch.testing.assert_close(ours.encode_text(ids), txt, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "name",
    [
        "clip_vit_base_patch32",
        "clip_vit_base_patch16",
        "clip_vit_large_patch14",
        "clip_vit_large_patch14_336",
    ],
)
def test_preset_parameter_counts_equal_hf(name):
    from transformers import CLIPModel

    from vitcourse.hub.clip import _hf_config

    with torch.device("meta"):
        ours = create_model(name)
        theirs = CLIPModel(_hf_config(get_config(name)))
    assert count_parameters(ours) == sum(p.numel() for p in theirs.parameters())


def test_real_tokenizer_ids_offline():
    tok = clip_tokenizer()
    assert len(tok) == 49408
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    rows = tok(["a", "b c"], padding="max_length", max_length=6).input_ids
    assert rows[0][:3] == [49406, 320, 49407] and len(rows[1]) == 6


def test_tokenizer_matches_open_clip():
    open_clip = pytest.importorskip("open_clip")
    text = "Un círculo rojo, grande! 3 estrellas"
    expected = open_clip.tokenize([text])[0]
    expected = expected[: int((expected == 49407).nonzero()[0]) + 1].tolist()
    assert clip_tokenizer()(text).input_ids == expected


# -- the mini-CLIP's world and its shipped checkpoint ---------------------------------


def test_word_tokenizer_and_phrases():
    from vitcourse.clip_world import WordTokenizer, make_pairs, phrase

    tok = WordTokenizer()
    assert len(tok) == get_config("clip_world_tiny").vocab_size
    assert tok.eot_token_id == get_config("clip_world_tiny").eot_token_id == len(tok) - 1
    pairs = make_pairs(12, 0, 9)
    ids = tok(pairs.captions)
    assert ids.shape == (12, tok.context_length)
    assert (ids == tok.eot_token_id).sum(dim=1).eq(1).all()
    assert phrase("star", "red", "small", 1) == "una estrella roja pequeña arriba"
    assert phrase("crescent") == "una media luna"
    with pytest.raises(ValueError, match="vocabulary"):
        tok("a photo of a cat")


def test_held_out_combinations_never_in_seen_pairs():
    from vitcourse.clip_world import HELD_OUT, make_pairs

    seen = make_pairs(60, 0, 0)
    assert not {c for shapes in seen.shapes for c in shapes} & set(HELD_OUT)
    unseen = make_pairs(8, 0, 4, combos="unseen")
    assert [s[0] for s in unseen.shapes] == list(HELD_OUT)


def test_retrieval_recall_and_zero_shot_on_known_features():
    from vitcourse.clip_world import retrieval_recall, zero_shot_accuracy

    eye = torch.eye(4)
    perfect = retrieval_recall(eye, eye, ["a", "b", "c", "d"], ks=(1,))
    assert perfect == {"i2t_R@1": 1.0, "t2i_R@1": 1.0}
    # two images with the same caption: either caption text counts as correct
    shifted = retrieval_recall(eye, eye[[1, 0, 2, 3]], ["a", "a", "c", "d"], ks=(1,))
    assert shifted["i2t_R@1"] == 1.0
    assert zero_shot_accuracy(eye[:3], eye[:3], [0, 1, 0]) == pytest.approx(2 / 3)


@pytest.mark.slow
def test_shipped_mini_clip_reaches_its_recorded_metrics(monkeypatch):
    """Re-measure the shipped mini-CLIP: the card's numbers are what the weights do."""
    from vitcourse import checkpoints
    from vitcourse.clip_world import WordTokenizer, evaluate

    monkeypatch.delenv("VITCOURSE_CHECKPOINTS", raising=False)
    if "clip_world_tiny" not in checkpoints.available():
        pytest.fail("no shipped clip_world_tiny; run python -m vitcourse.scripts.train_clip")
    entry = checkpoints.info("clip_world_tiny")
    model = checkpoints.load("clip_world_tiny")
    torch.set_num_threads(1)
    metrics = evaluate(model, WordTokenizer())
    for key, value in entry["metrics"].items():
        assert metrics[key] == pytest.approx(value, abs=0.01), key
    # what the chapter shows: retrieval far above chance, and the colour of a
    # combination never seen in training recognised (chance: 1 in 10 colours)
    assert metrics["i2t_R@1"] > 10 * 1 / 400
    assert metrics["combo_unseen_color_accuracy"] > 0.5


@pytest.mark.slow
def test_real_clip_zero_shot_pipeline_on_fashion_mnist():
    """The full profile's path (a Hub CLIPModel, converted, real tokenizer, real
    images) with the offline stand-in's architecture and random weights."""
    from transformers import CLIPModel

    from vitcourse.clip_world import (
        FASHION_TEMPLATES,
        class_embeddings,
        clip_pixels,
        hf_ids,
        zero_shot_predict,
    )
    from vitcourse.data import FashionMNIST
    from vitcourse.data.mnist import FASHION_CLASSES_EN
    from vitcourse.hub.standins import tiny_clip

    torch.manual_seed(0)
    hf = CLIPModel(tiny_clip()).eval()
    ours = clip_from_hf(hf).eval()
    data = FashionMNIST("test", size=20, normalize=False)
    pixels = clip_pixels(data.images, hf.config.vision_config.image_size)
    assert pixels.shape == (20, 3, 32, 32)
    prompts = [[t.format(c.lower()) for t in FASHION_TEMPLATES] for c in FASHION_CLASSES_EN]
    classes = class_embeddings(ours, hf_ids(clip_tokenizer()), prompts)
    assert classes.shape == (10, 16)
    predicted = zero_shot_predict(ours, pixels, classes)
    assert predicted.shape == (20,) and int(predicted.max()) < 10
    with torch.no_grad():  # the same prediction through Hugging Face's own model
        ids = hf_ids(clip_tokenizer())([p for ps in prompts for p in ps])
        logits = hf(input_ids=ids, pixel_values=pixels).logits_per_image  # (20, 50)
    ours_logits = ours(pixels, ids)
    torch.testing.assert_close(ours_logits, logits, atol=1e-4, rtol=1e-4)
