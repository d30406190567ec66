"""Donut (vitcourse.models.donut): sequences, tokenizer, receipts, the model, generation, HF layout, checkpoint."""

import pytest
import torch

from vitcourse.data.text import WORDS, generate_receipt
from vitcourse.models import create_model
from vitcourse.models.donut import Donut, DonutConfig, attention_guide_loss, donut_loss
from vitcourse.ocr.receipts import (
    LETTERS,
    ReceiptDataset,
    character_boxes,
    flatten_fields,
    parse_receipt,
    random_words,
    receipt_scores,
    receipt_target,
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
    assert sequence_to_json("<s_tienda>luna</s_tienda><s_total>3.5") == {"tienda": "luna"}
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
    assert sample.image.shape == (3, 128, 128) and len(sample.lines) == len(sample.boxes)
    train, test = ReceiptDataset("train", 2), ReceiptDataset("test", 2)
    assert not torch.equal(train[0][0], test[0][0])
    image, tokens = train[0]
    assert image.shape == (3, 128, 128) and tokens.shape == (96,)


def test_the_reading_task_writes_every_line_and_made_up_names_are_new():
    sample = generate_receipt(4)
    text = receipt_target(sample, "read")
    assert text.split("<sep/>") == sample.lines and text.split("<sep/>")[-1].startswith("total ")
    assert receipt_target(sample, "parse") == json_to_sequence(sample.fields)
    with pytest.raises(ValueError, match="task must be one of"):
        receipt_target(sample, "translate")
    words = random_words((0, 0, 0))
    assert words == random_words((0, 0, 0)) and words != random_words((0, 0, 1))
    assert all(3 <= len(w) <= 9 and set(w) <= set(LETTERS) for w in words)
    tokenizer = receipt_tokenizer()
    reading = ReceiptDataset("train", 3, task="read", words="random")
    for i in range(3):
        sample = reading.receipt(i)
        assert sample.fields["tienda"] not in WORDS
        assert tokenizer.decode(reading[i][1]) == "<sep/>".join(sample.lines)
    assert not torch.equal(reading[0][0], ReceiptDataset("train", 1)[0][0])
    with pytest.raises(ValueError, match="words must be one of"):
        ReceiptDataset("train", 1, words="english")


def test_character_boxes_follow_the_tokens_and_the_print():
    tokenizer = receipt_tokenizer()
    for task in ("read", "parse"):
        for seed in range(20):
            sample = generate_receipt(seed)
            ids = tokenizer.encode(receipt_target(sample, task))
            boxes = character_boxes(sample, task)
            assert len(boxes) == len(ids)
            for i, box in zip(ids, boxes):
                token = tokenizer.vocab[i]
                assert (box is None) == (len(token) > 1 or token == " "), (token, box)
    sample = generate_receipt(2)
    line_boxes = sample.boxes.tolist()
    boxes = [b for b in character_boxes(sample, "read") if b is not None]
    assert boxes[0][0] == line_boxes[0][0]  # the shop's first letter starts its line
    price = sample.lines[1].rpartition(" ")[2]
    first_item = [b for b in boxes if b[1] == line_boxes[1][1]]
    assert first_item[-1][2] == pytest.approx(line_boxes[1][2])  # prices end at the right edge
    assert len(first_item) == len(sample.lines[1]) - 1 and len(price) < len(first_item)
    _, tokens, token_boxes = ReceiptDataset("train", 1, task="read", boxes=True)[0]
    assert token_boxes.shape == (96, 4) and token_boxes[0].isnan().all()
    assert (~token_boxes[:, 0].isnan()).sum() == sum(len(tokenizer.vocab[int(t)]) == 1 for t in tokens if t) - (
        tokens == tokenizer.ids[" "]
    ).sum()


def test_the_attention_guide_rewards_looking_at_the_character():
    grid, size = 4, 32  # cells of 8 px
    box = torch.tensor([[[9.0, 1.0, 15.0, 7.0], [float("nan")] * 4]])  # cell (0, 1), then nothing
    on = torch.zeros(1, 2, 2, 16)
    on[..., 1] = 1.0  # every head on cell 1
    assert attention_guide_loss(on, box, size, grid).item() == pytest.approx(0.0, abs=1e-5)
    spread = torch.full((1, 2, 2, 16), 1 / 16)
    assert attention_guide_loss(spread, box, size, grid).item() == pytest.approx(torch.log(torch.tensor(16.0)).item())
    assert attention_guide_loss(spread, torch.full((1, 2, 4), float("nan")), size, grid).item() == 0.0
    model = Donut(DonutConfig(**TINY)).eval()
    images, tokens = torch.randn(2, 3, 30, 30), torch.randint(0, 23, (2, 6))
    logits, weights = model.forward_with_attention(images, tokens)
    torch.testing.assert_close(logits, model(images, tokens))
    torch.testing.assert_close(weights, model.cross_attention(images, tokens)[-1])


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


def test_memory_positions_can_start_as_the_2d_sine_cosine_encoding():
    from vitcourse.layers import sincos_2d_encoding

    model = Donut(DonutConfig(**TINY, memory_pos_init="sincos"))
    torch.testing.assert_close(model.memory_pos[0], sincos_2d_encoding(15, 15, 20))
    assert model.memory_pos.requires_grad  # a start, then trained
    assert Donut(DonutConfig(**TINY)).memory_pos.abs().max() < 0.1
    with pytest.raises(ValueError, match="memory_pos_init"):
        DonutConfig(memory_pos_init="rope")


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
    assert rows["bloques del decodificador"]["nuestro"] == rows["bloques del decodificador"]["hugging_face"]
    # our Swin ends with a LayerNorm that Donut-Swin doesn't have
    assert rows["codificador Swin"]["nuestro"] - rows["codificador Swin"]["hugging_face"] == 2 * 20
    images = torch.randn(1, 3, 30, 30)
    logits = hf(pixel_values=images, decoder_input_ids=torch.zeros(1, 5, dtype=torch.long)).logits
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
        images, tokens = map(torch.stack, zip(*[test[i] for i in range(start, start + 32)]))
        with torch.no_grad():
            predicted = model.generate(images)
        pairs += [(tokenizer.decode(t), tokenizer.decode(p)) for t, p in zip(tokens, predicted)]
    # the same texts that the training run wrote for its first 20 test receipts
    recorded = results.load("train_donut")["test_examples"]
    same = sum(
        (true, read) == (example["true"], example["predicted"]) for (true, read), example in zip(pairs, recorded)
    )
    assert same >= len(recorded) - 1
    scores = receipt_scores([t for t, _ in pairs], [p for _, p in pairs])
    metrics = card["metrics"]
    assert scores["field_accuracy"] == pytest.approx(metrics["test_field_accuracy"], abs=0.06)
    assert scores["cer"] == pytest.approx(metrics["test_cer"], abs=0.03)
    assert scores["parsed"] == pytest.approx(metrics["test_parsed"], abs=0.06)
    # it reads: 99.8 % of the fields and a CER of 0.0001 on the card's 500 receipts; a margin
    # below that, so that a model that stops reading (the first one wrote a typical receipt
    # whatever the image: 1.7 % of the fields) fails here
    assert scores["field_accuracy"] >= 0.95 and scores["cer"] <= 0.01


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


@pytest.mark.slow
def test_training_script_pretrains_on_reading_then_fine_tunes():
    from vitcourse.scripts.train_donut import train

    _, record = train(
        steps=2, batch_size=2, warmup=1, val_size=2, test_size=2, log_every=1, eval_every=2,
        pretrain_steps=3, pretrain_lr=2e-3, pretrain_guide=0.5,
    )  # fmt: skip
    pre = record["recipe"]["pretrain"]
    assert pre["steps"] == 3 and pre["task"] == "read" and pre["words"] == "random" and pre["lr"] == 2e-3
    assert len(record["pretrain"]["curve"]) == 3 and len(record["curve"]) == 2
    assert pre["guide"] == 0.5 and "guide_loss" in record["pretrain"]["curve"][0] and record["recipe"]["guide"] == 0
    assert record["data"]["pretrain_receipts"] == 6
    assert record["train_seconds"] >= record["pretrain"]["seconds"]
