"""In-context learning at a size a CPU can train: many small tasks, learnt from the prompt.

GPT-3 was never trained to translate or add; its training text happened to contain
demonstrations of such tasks, and predicting the next token of a demonstration is
easier for a model that works out the task from the ones before. At test time a
*prompt* gives a task description and ``k`` demonstrations (zero-, one- or few-shot),
and the model continues it, with no gradient update.

Here the same happens in miniature. A **task** is a word-to-word function over a small
alphabet: an operation on letter positions that the description names (``copiar``,
``invertir``, ``rotar``) composed with a secret letter substitution (a permutation of
the alphabet) that nothing names. A training sequence is the description and several
demonstrations of one task::

    invertir:
    bad => ecf
    fca => bde
    ...

The substitutions are split: training uses one set of permutations, evaluation uses
the rest, so every evaluation task is new to the model. Without demonstrations (k = 0)
it knows the operation but can only guess the letters; each demonstration reveals some
of the substitution.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "OPERATIONS",
    "IclTask",
    "IclVocab",
    "evaluate_icl",
    "make_prompt",
    "sample_sequence",
    "split_tasks",
]

#: The operations on positions, by the name the description uses.
OPERATIONS = {
    "copiar": lambda word: word,
    "invertir": lambda word: word[::-1],
    "rotar": lambda word: word[1:] + word[:1],
}


class IclVocab:
    """Characters ↔ ids: the alphabet, the operation names' letters, ``=>``, ``:``, space, newline.

    Args:
        alphabet: the letters words are made of.
    """

    def __init__(self, alphabet: str) -> None:
        specials = ["<pad>", "\n", " ", ":", "=>"]
        letters = sorted(set(alphabet) | set("".join(OPERATIONS)))
        self.tokens = specials + letters
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.alphabet = alphabet

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Ids of a text; ``=>`` is one token."""
        out, i = [], 0
        while i < len(text):
            if text.startswith("=>", i):
                out.append(self.ids["=>"])
                i += 2
            else:
                out.append(self.ids[text[i]])
                i += 1
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ids (padding dropped)."""
        return "".join(self.tokens[i] for i in ids if i)


@dataclass(frozen=True)
class IclTask:
    """One task: the named ``operation`` and the secret ``substitution`` (letter → letter)."""

    operation: str
    substitution: tuple[str, ...]
    alphabet: str

    def __call__(self, word: str) -> str:
        table = dict(zip(self.alphabet, self.substitution))
        return "".join(table[c] for c in OPERATIONS[self.operation](word))


def split_tasks(alphabet: str, held_out: float = 0.5, seed: int = 0) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Split every substitution of ``alphabet`` into training and held-out ones.

    Args:
        alphabet: e.g. ``"abcdef"`` (720 permutations).
        held_out: fraction kept for evaluation.
        seed: seeds the shuffle.

    Returns:
        ``(train, evaluation)`` lists of permutations.
    """
    perms = list(itertools.permutations(alphabet))
    order = np.random.default_rng(seed).permutation(len(perms))
    cut = int(len(perms) * (1 - held_out))
    return [perms[i] for i in order[:cut]], [perms[i] for i in order[cut:]]


def _random_word(rng: np.random.Generator, alphabet: str, length: int) -> str:
    return "".join(rng.choice(list(alphabet), size=length))


def make_prompt(task: IclTask, demos: Sequence[str], query: str) -> str:
    """The prompt of the slide's format: description, ``k`` demonstrations, ``query =>``.

    Args:
        task: the task.
        demos: the demonstrations' input words (``k`` of them; 0 is zero-shot).
        query: the word to transform.

    Returns:
        ``"invertir:\\nbad => ecf\\n…\\nfca =>"``; the answer is what follows.
    """
    lines = [f"{task.operation}:"] + [f"{w} => {task(w)}" for w in demos] + [f"{query} =>"]
    return "\n".join(lines)


def sample_sequence(rng: np.random.Generator, substitutions: Sequence[tuple[str, ...]], alphabet: str,
                    num_demos: int, word_len: int) -> str:
    """A training text: a random task's description and ``num_demos`` demonstrations."""
    operation = list(OPERATIONS)[rng.integers(len(OPERATIONS))]
    task = IclTask(operation, substitutions[rng.integers(len(substitutions))], alphabet)
    words = [_random_word(rng, alphabet, word_len) for _ in range(num_demos)]
    return "\n".join([f"{operation}:"] + [f"{w} => {task(w)}" for w in words]) + "\n"


@torch.no_grad()
def evaluate_icl(model, vocab: IclVocab, substitutions: Sequence[tuple[str, ...]], shots: Sequence[int],
                 num_prompts: int, word_len: int, seed: int = 0) -> dict[int, dict[str, float]]:
    """Accuracy of greedy answers with ``k`` demonstrations in the prompt, for each ``k``.

    The same prompts serve every ``k``: the ``k``-shot prompt keeps the first ``k``
    demonstrations of a fixed list, so the curves differ only by what the prompt shows.

    Args:
        model: a :class:`~vitcourse.models.GPT` over ``vocab``.
        vocab: the vocabulary.
        substitutions: the tasks' substitutions (held-out ones for the real test).
        shots: the values of ``k``.
        num_prompts: prompts per ``k``.
        word_len: letters per word.
        seed: seeds tasks, words and queries.

    Returns:
        ``{k: {"exact": fraction of answers entirely right, "letters": fraction of
        letters right}}``.
    """
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(num_prompts):
        operation = list(OPERATIONS)[rng.integers(len(OPERATIONS))]
        task = IclTask(operation, substitutions[rng.integers(len(substitutions))], vocab.alphabet)
        demos = [_random_word(rng, vocab.alphabet, word_len) for _ in range(max(shots))]
        cases.append((task, demos, _random_word(rng, vocab.alphabet, word_len)))
    model.eval()
    results = {}
    for k in shots:
        prompts = [vocab.encode(make_prompt(task, demos[:k], query) + " ") for task, demos, query in cases]
        by_length: dict[int, list[int]] = {}
        for i, prompt in enumerate(prompts):  # one batch per prompt length: no padding needed
            by_length.setdefault(len(prompt), []).append(i)
        exact = letters = 0
        for length, indices in by_length.items():
            batch = torch.tensor([prompts[i] for i in indices])  # (b, length)
            answers = model.generate(batch, word_len, temperature=0)[:, length:]
            for i, answer in zip(indices, answers.tolist()):
                task, _, query = cases[i]
                got, want = vocab.decode(answer), task(query)
                exact += got == want
                letters += sum(a == b for a, b in zip(got, want))
        results[k] = {"exact": exact / len(cases), "letters": letters / (len(cases) * word_len)}
    return results
