"""The GPT chapter's shipped checkpoints and measurements: re-measured, not trusted.

Each test recomputes a number that a committed script recorded (in a checkpoint card or
in ``vitcourse/text/results/*.json``) from the committed weights and data, and compares.
"""

import math

import pytest
import torch

from vitcourse import checkpoints
from vitcourse.data import sources
from vitcourse.text.results import load as load_results

needs_bible = pytest.mark.skipif(
    not sources.is_available("reina_valera"), reason="sword-text-sparv/diatheke not installed"
)


@pytest.fixture(autouse=True)
def shipped_registry(monkeypatch):
    monkeypatch.delenv("VITCOURSE_CHECKPOINTS", raising=False)
    torch.set_num_threads(1)


def test_cards_and_results_agree():
    card = checkpoints.info("gpt_reina_valera")
    results = load_results("train_gpt")
    assert card["metrics"] == results["metrics"] and card["config"] == results["config"]
    assert card["tokenizer"] == results["data"]["tokenizer"]
    m = results["metrics"]
    assert m["reduction_vs_bigram"] == pytest.approx(1 - m["val_loss"] / m["ngram_val_loss"]["bigram"], abs=1e-3)
    assert m["reduction_vs_bigram"] >= 0.25  # the target: 25 % below the bigram
    assert math.exp(m["val_loss"]) == pytest.approx(m["val_perplexity"], rel=1e-3)
    icl = load_results("train_icl")
    assert checkpoints.info("gpt_icl")["config"] == icl["config"]
    held = icl["held_out"]
    assert [held[str(k)]["exact"] for k in icl["shots"]] == sorted(held[str(k)]["exact"] for k in icl["shots"])
    assert held["8"]["exact"] >= 2 * held["0"]["exact"] and held["8"]["exact"] > 0.3


@needs_bible
@pytest.mark.slow
def test_language_model_reaches_its_recorded_validation_loss():
    from vitcourse.text import reina_valera, split_by_chapter
    from vitcourse.text.lm import encode_verses, evaluate_lm, load_tokenizer

    card = checkpoints.info("gpt_reina_valera")
    model = checkpoints.load("gpt_reina_valera")
    _, val = split_by_chapter(reina_valera())
    stream = encode_verses(load_tokenizer(card["tokenizer"]), val)
    assert len(stream) == card["data"]["val_tokens"]
    assert evaluate_lm(model, stream, card["config"]["max_seq_len"]) == pytest.approx(
        card["metrics"]["val_loss"], abs=1e-3
    )


@needs_bible
def test_bigram_baseline_on_a_slice_matches_the_method():
    """The n-gram code the script used, on a slice: a bigram beats a unigram on Spanish text."""
    from vitcourse.text import reina_valera, split_by_chapter
    from vitcourse.text.lm import encode_verses, load_tokenizer
    from vitcourse.text.ngram import NGramLM

    train, val = split_by_chapter(reina_valera())
    tok = load_tokenizer(checkpoints.info("gpt_reina_valera")["tokenizer"])
    a, b = encode_verses(tok, train[:3000]), encode_verses(tok, val[:300])
    V = tok.get_vocab_size()
    assert NGramLM(2, V).fit(a).cross_entropy(b) < NGramLM(1, V).fit(a).cross_entropy(b)


def test_icl_model_reproduces_its_recorded_points():
    from vitcourse.text.icl import SOURCE_WORDS, IclTask, IclVocab, evaluate_icl, split_secrets

    icl = load_results("train_icl")
    recipe = icl["recipe"]
    model = checkpoints.load("gpt_icl")
    vocab = IclVocab(SOURCE_WORDS[: len(recipe["source_words"])])
    tasks = [IclTask("adivinar", s) for s in split_secrets(seed=recipe["seed"])[1]]
    got = evaluate_icl(model, vocab, tasks, (0, 8), icl["eval_prompts"], recipe["noise"], seed=123)
    for k in (0, 8):
        assert got[k]["exact"] == pytest.approx(icl["held_out"][str(k)]["exact"], abs=2 / icl["eval_prompts"])


@needs_bible
@pytest.mark.slow
def test_finetuning_reproduces_a_recorded_run():
    """The linear probe of seed 0 (cheapest run of the sweep), re-run."""
    from vitcourse.scripts.finetune_gpt import pretrained_classifier
    from vitcourse.text import SECTIONS, reina_valera, split_by_chapter
    from vitcourse.text.lm import load_tokenizer
    from vitcourse.text.supervised import accuracy, encode_labelled, finetune, sample_by_section

    ft = load_results("finetune_gpt")
    run = next(r for r in ft["runs"] if r["kind"] == "probe" and r["seed"] == 0)
    card = checkpoints.info("gpt_reina_valera")
    tok, max_len = load_tokenizer(card["tokenizer"]), card["config"]["max_seq_len"]
    train_verses, test_verses = split_by_chapter(reina_valera())
    test = encode_labelled(tok, sample_by_section(test_verses, ft["test_size"] // len(SECTIONS), seed=1000), max_len)
    train = encode_labelled(tok, sample_by_section(train_verses, ft["train_per_class"], seed=0), max_len)
    torch.manual_seed(0)
    model = pretrained_classifier(len(SECTIONS), ft["recipe"]["dropout"])
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("head.")
    finetune(model, train, 0.0, ft["recipe"]["epochs"], ft["recipe"]["probe_lr"], seed=0)
    assert accuracy(model, test) == pytest.approx(run["test_accuracy"], abs=0.01)


def test_icl_seeds_share_the_recipe_and_the_rising_curve():
    """The other training seeds the chapter averages over: same recipe, k = 8 beats k = 0."""
    shipped = load_results("train_icl")
    for seed in (1, 2):
        run = load_results(f"train_icl_seed{seed}")
        recipe = {k: v for k, v in run["recipe"].items() if k != "seed"}
        assert run["recipe"]["seed"] == seed and run["config"] == shipped["config"]
        assert recipe == {k: v for k, v in shipped["recipe"].items() if k != "seed"}
        assert run["held_out"]["8"]["exact"] >= 2 * run["held_out"]["0"]["exact"]
