"""The text-prompted mini detector and Hugging Face's Grounding DINO behind detect()."""

import pytest
import torch

from vitcourse.detection.phrases import phrase, positives
from vitcourse.models import create_model
from vitcourse.models.detr import GroundingCriterion, GroundingMatcher, PhraseEncoder


def tiny_grounding(**overrides):
    fields = dict(embed_dim=36, num_heads=3, enc_depth=1, dec_depth=2, mlp_dim=37, num_queries=7, text_heads=3,
                  backbone_options={"widths": (8, 12), "depths": (1, 1)})  # fmt: skip
    return create_model("grounding_detr_mini", **{**fields, **overrides})


def test_phrase_encoder_one_vector_per_phrase_unknown_words_allowed():
    encoder = PhraseEncoder(["rojo", "círculo"], embed_dim=12, depth=1, num_heads=2, max_words=4).eval()
    out = encoder(["círculo rojo", "Círculo", "palabra desconocida"])
    assert out.shape == (3, 12)
    ids = encoder.tokenize(["círculo rojo", "Círculo"])
    assert ids[0, :2].tolist() == [encoder.index["círculo"], encoder.index["rojo"]] and ids[0, 2:].eq(0).all()
    assert ids[1, 0] == ids[0, 0]  # lower-cased
    # padding doesn't change a phrase's vector
    alone = encoder(["círculo"])
    torch.testing.assert_close(encoder(["círculo", "círculo rojo"])[0], alone[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="empty"):
        encoder(["  "])


def test_grounding_detr_scores_every_query_against_every_phrase():
    model = tiny_grounding()
    out = model(torch.rand(2, 3, 30, 34), ["círculo", "figura roja", "estrella roja"])
    assert out["pred_logits"].shape == (2, 7, 3) and out["pred_boxes"].shape == (2, 7, 4)
    assert len(out["aux_outputs"]) == 1 and not hasattr(model, "class_embed")
    # precomputed phrase embeddings give the same logits
    text = model.encode_phrases(["círculo", "figura roja", "estrella roja"])
    features, valid = model.forward_backbone(torch.rand(1, 3, 30, 34))
    a = model.forward_head(features, valid, text)["pred_logits"]
    b = model.forward_head(features, valid, ["círculo", "figura roja", "estrella roja"])["pred_logits"]
    torch.testing.assert_close(a, b)
    # initial probabilities sit near the prior (focal-loss start)
    assert out["pred_logits"].sigmoid().mean().item() < 0.1


def test_grounding_loss_matches_and_backpropagates_into_the_text_encoder():
    model = tiny_grounding()
    prompt = [phrase("star"), phrase(color="red"), phrase("star", "red"), phrase("circle")]
    objects = [[("star", "red")], [("circle", "blue"), ("star", "green")]]
    targets = [
        {"labels": torch.zeros(len(o), dtype=torch.long), "boxes": torch.rand(len(o), 4) * 0.3 + 0.2,
         "positive": positives(prompt, o)} for o in objects
    ]  # fmt: skip
    out = model(torch.rand(2, 3, 30, 30), [p.text for p in prompt])
    losses = GroundingCriterion()(out, targets)
    losses["loss"].backward()
    assert model.text_encoder.embed.weight.grad.abs().sum() > 0
    assert model.query_proj.weight.grad is not None and model.logit_scale.grad is not None
    # the class cost is minus the mean probability of the object's phrases
    logits = torch.randn(5, 4)
    cost = GroundingMatcher().class_cost(logits, {"positive": positives(prompt, [("star", "red")])})
    expected = -logits.sigmoid()[:, :3].mean(1, keepdim=True)
    torch.testing.assert_close(cost, expected)


@pytest.mark.slow
def test_hugging_face_grounding_dino_runs_offline_through_detect():
    from vitcourse.detection.detect import GroundingDinoDetector, detect
    from vitcourse.detection.phrases import vocabulary
    from vitcourse.hub.grounding_dino import bert_like_vocab, tiny_grounding_dino

    vocab = bert_like_vocab(vocabulary())
    assert len(vocab) >= 1030 and vocab[101] == "[CLS]" and vocab[1012] == "." and "circulo" in vocab
    model, processor = tiny_grounding_dino(vocabulary())
    assert processor.tokenizer.tokenize("Círculo rojo.") == ["circulo", "rojo", "."]
    found = detect(torch.rand(1, 3, 70, 90), "círculo rojo. estrella", 0.0, 0.0,
                   detector=GroundingDinoDetector(model, processor))[0]  # fmt: skip
    assert found.boxes.shape == (20, 4) and found.phrase_scores.shape == (20, 2)
    assert (found.boxes[:, 2] <= 90.01).all() and set(found.phrases) <= {"círculo rojo", "estrella"}
