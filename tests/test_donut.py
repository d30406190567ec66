"""Donut (vitcourse.models.donut): sequences, tokenizer, receipts, the model, generation, HF layout, checkpoint."""

import pytest
import torch

from vitcourse.data.text import generate_receipt
from vitcourse.models import create_model
from vitcourse.models.donut import Donut, DonutConfig, donut_loss
from vitcourse.ocr.receipts import (
    ReceiptDataset,
    flatten_fields,
    parse_receipt,
    receipt_scores,
    receipt_tokenizer,
)
from vitcourse.ocr.sequence import DonutTokenizer, json_to_sequence, sequence_to_json

# odd sizes, so that shape bugs can't hide: 30 px, 2-px patches, grids 15 -> no merge
TINY = {
    "img_size": 30, "patch_size": 2, "encoder_dim": 12, "encoder_depths": (1,), "encoder_heads": (2,),
    "window_size": 5, "vocab_size": 23, "max_len": 17, "embed_dim": 20, "depth": 2, "num_heads": 2,
    "mlp_ratio": 1.5,
}  # fmt: skip


def test_json_round_trips_through_the_tagged_sequence():
    receipt = {
        "tienda": "luna",
        "items": [
            {"nombre": "pan", "precio": "2.50"},
            {"nombre": "té", "precio": "1.00"},
        ],
        "total": "3.50",
    }
    text = json_to_sequence(receipt)
    assert text.startswith("<s_tienda>luna</s_tienda><s_items><s_nombre>pan</s_nombre>")
    assert "<sep/>" in text and sequence_to_json(text) == receipt
    one = {"items": [{"nombre": "pan"}]}
    assert sequence_to_json(json_to_sequence(one)) == {"items": {"nombre": "pan"}}
    assert sequence_to_json(json_to_sequence(one), lists=("items",)) == one


def test_parsing_forgives_a_broken_sequence():
    assert sequence_to_json("<s_tienda>luna</s_tienda><s_total>3.5") == {
        "tienda": "luna"
    }
    assert sequence_to_json("no tags at all") == "no tags at all"
    assert parse_receipt("garbage") == {}


def test_tokenizer_reads_tags_as_one_token_and_round_trips():
    tokenizer = DonutTokenizer(["a", "ab"], "xyz")
    ids = tokenizer.encode("<s_ab>x</s_ab>")
    assert ids[0] == tokenizer.task_id and ids[-1] == tokenizer.eos_id and len(ids) == 5
    assert tokenizer.decode(ids) == "<s_ab>x</s_ab>"
    with pytest.raises(ValueError, match="'q' is not in the tokenizer"):
        tokenizer.encode("q")


def test_every_receipt_fits_the_vocabulary_and_the_model():
    tokenizer = receipt_tokenizer()
    config = DonutConfig()
    assert len(tokenizer) == config.vocab_size
    longest = 0
    for seed in range(80):
        sample = generate_receipt(seed, max_items=3)
        text = json_to_sequence(sample.fields)
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == text and parse_receipt(text) == sample.fields
        longest = max(longest, len(ids))
    assert longest <= config.max_len


def test_receipt_total_is_the_sum_of_its_prices_and_splits_differ():
    sample = generate_receipt(3)
    cents = sum(round(float(item["precio"]) * 100) for item in sample.fields["items"])
    assert round(float(sample.fields["total"]) * 100) == cents
    assert sample.image.shape == (3, 128, 128) and len(sample.lines) == len(
        sample.boxes
    )
    train, test = ReceiptDataset("train", 2), ReceiptDataset("test", 2)
    assert not torch.equal(train[0][0], test[0][0])
    image, tokens = train[0]
    assert image.shape == (3, 128, 128) and tokens.shape == (96,)


def test_scores_count_fields_and_exact_matches():
    truth = json_to_sequence(generate_receipt(1).fields)
    assert receipt_scores([truth], [truth]) == {
        "cer": 0.0,
        "field_accuracy": 1.0,
        "exact_match": 1.0,
        "parsed": 1.0,
    }
    fields = flatten_fields(parse_receipt(truth))
    wrong = truth.replace(f"<s_total>{fields['total']}<", "<s_total>0.00<")
    scores = receipt_scores([truth], [wrong])
    assert scores["field_accuracy"] == pytest.approx(1 - 1 / len(fields))
    assert scores["exact_match"] == 0 and 0 < scores["cer"] < 0.1


def test_forward_shapes_and_backward():
    torch.manual_seed(0)
    model = Donut(DonutConfig(**TINY))
    images, tokens = torch.randn(3, 3, 30, 30), torch.randint(0, 23, (3, 9))
    logits = model(images, tokens[:, :-1])
    assert logits.shape == (3, 8, 23)
    assert model.encode(images).shape == (3, 15 * 15, 20)
    donut_loss(logits, tokens[:, 1:]).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_padding_is_not_scored():
    logits = torch.randn(2, 4, 7)
    targets = torch.tensor([[3, 4, 0, 0], [5, 0, 0, 0]])
    kept = torch.nn.functional.cross_entropy(
        torch.stack([logits[0, 0], logits[0, 1], logits[1, 0]]), torch.tensor([3, 4, 5])
    )
    assert donut_loss(logits, targets, pad_id=0) == pytest.approx(kept.item())


def test_generation_with_the_cache_equals_decoding_the_whole_prefix():
    torch.manual_seed(1)
    model = Donut(DonutConfig(**TINY)).eval()
    images = torch.randn(2, 3, 30, 30)
    generated = model.generate(images, max_new_tokens=12)
    assert generated.shape[0] == 2 and (generated[:, 0] == model.config.task_id).all()
    memory = model.encode(images)
    with torch.no_grad():
        for step in range(1, generated.shape[1]):
            prefix = generated[:, :step]
            greedy = model.decode(prefix, memory)[:, -1].argmax(-1)
            alive = (prefix == model.config.eos_id).sum(1) == 0
            assert torch.equal(greedy[alive], generated[alive, step])


def test_cross_attention_maps_are_distributions_over_the_grid():
    torch.manual_seed(2)
    model = Donut(DonutConfig(**TINY)).eval()
    images, tokens = torch.randn(2, 3, 30, 30), torch.randint(0, 23, (2, 6))
    maps = model.cross_attention(images, tokens)
    assert maps.shape == (2, 2, 2, 6, 15 * 15)  # depth, B, heads, T, grid cells
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 2, 6))
    assert not any(block.cross_attn._forward_hooks for block in model.blocks)  # hooks removed
    torch.testing.assert_close(model(images, tokens), model(images, tokens))


def test_decoding_past_max_len_says_what_to_do():
    model = Donut(DonutConfig(**TINY))
    with pytest.raises(ValueError, match="exceed max_len=17"):
        model(torch.randn(1, 3, 30, 30), torch.zeros(1, 18, dtype=torch.long))


def test_the_preset_builds_from_the_registry():
    model = create_model("donut_receipts")
    assert isinstance(model, Donut) and model.config.img_size == 128
    assert sum(p.numel() for p in model.parameters()) < 750_000  # a small checkpoint


@pytest.mark.slow
def test_hugging_face_layout_of_the_same_size_has_the_same_decoder_blocks():
    pytest.importorskip("transformers")
    from transformers import VisionEncoderDecoderModel

    from vitcourse.hub.donut import hf_donut_config, parameter_table

    ours = Donut(DonutConfig(**{**TINY, "encoder_dim": 20, "encoder_heads": (2,)}))
    hf = VisionEncoderDecoderModel(hf_donut_config(ours.config))
    rows = {row["parte"]: row for row in parameter_table(ours, hf)}
    assert (
        rows["bloques del decodificador"]["nuestro"]
        == rows["bloques del decodificador"]["hugging_face"]
    )
    # our Swin ends with a LayerNorm that Donut-Swin doesn't have
    assert (
        rows["codificador Swin"]["nuestro"] - rows["codificador Swin"]["hugging_face"]
        == 2 * 20
    )
    images = torch.randn(1, 3, 30, 30)
    logits = hf(
        pixel_values=images, decoder_input_ids=torch.zeros(1, 5, dtype=torch.long)
    ).logits
    assert logits.shape == ours(images, torch.zeros(1, 5, dtype=torch.long)).shape


@pytest.mark.slow
def test_the_shipped_checkpoint_still_reads_receipts():
    """Re-read the card's held-out receipts: its numbers are what the weights do."""
    from vitcourse import checkpoints
    from vitcourse.ocr import results

    if "donut_receipts" not in checkpoints.available():
        pytest.skip("donut_receipts is not built")
    torch.manual_seed(0)
    model = checkpoints.load("donut_receipts")
    card = checkpoints.info("donut_receipts")
    size = 64  # the first 64 of the card's held-out receipts, batched as the script does
    test = ReceiptDataset("test", size, seed=card["recipe"]["seed"])
    tokenizer = test.tokenizer
    pairs = []
    for start in range(0, size, 32):
        images, tokens = map(
            torch.stack, zip(*[test[i] for i in range(start, start + 32)])
        )
        with torch.no_grad():
            predicted = model.generate(images)
        pairs += [(tokenizer.decode(t), tokenizer.decode(p)) for t, p in zip(tokens, predicted)]
    # the same texts that the training run wrote for its first 20 test receipts
    recorded = results.load("train_donut")["test_examples"]
    same = sum(
        (true, read) == (example["true"], example["predicted"])
        for (true, read), example in zip(pairs, recorded)
    )
    assert same >= len(recorded) - 1
    scores = receipt_scores([t for t, _ in pairs], [p for _, p in pairs])
    metrics = card["metrics"]
    assert scores["field_accuracy"] == pytest.approx(metrics["test_field_accuracy"], abs=0.06)
    assert scores["cer"] == pytest.approx(metrics["test_cer"], abs=0.03)
    assert scores["parsed"] == pytest.approx(metrics["test_parsed"], abs=0.06)


@pytest.mark.slow
def test_training_script_continues_from_a_registered_checkpoint(tmp_path, monkeypatch):
    from vitcourse import checkpoints
    from vitcourse.scripts.train_donut import train

    monkeypatch.setenv("VITCOURSE_CHECKPOINTS", str(tmp_path))
    start = create_model("donut_receipts")
    checkpoints.register("start", start, "donut_receipts", {}, metrics={"test_cer": 1.0})
    model, record = train(steps=1, batch_size=2, lr=0.0, val_size=2, test_size=2, init="start")
    assert record["recipe"]["init"] == "start" and len(record["test_examples"]) == 2
    for a, b in zip(start.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)  # a learning rate of 0: the weights are the checkpoint's
