"""In-context learning at a size a CPU can train: many small tasks, learnt from the prompt.

GPT-3 was never trained to translate; its training text happened to contain
demonstrations of such tasks, and predicting the next token of a demonstration is
easier for a model that works out the task from the ones before. At test time a
*prompt* gives a task description and ``k`` demonstrations (zero-, one- or few-shot),
and the model continues it, with no gradient update.

Here the same happens in miniature, with made-up words over a small alphabet:

* ``traducir:`` tasks are **secret dictionaries**: each of a fixed set of source words
  (``SOURCE_WORDS``) has a random translation, drawn anew for every task. Nothing but
  the demonstrations says what the translation is;
* ``copiar:`` is one task the description alone defines (the answer is the word).

A training sequence is a description and several demonstrations of one task::

    traducir:
    ab => fd
    ce => aa
    ab => fd
    ...

Training draws dictionaries from a fixed pool; evaluation uses dictionaries drawn with
another seed, so every evaluated ``traducir`` task is new to the model. With k = 0 it
can only guess; each demonstration may show the query's translation, which the model
must find and copy (the mechanism of *induction heads*, Olsson et al. 2022).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "IclTask",
    "IclVocab",
    "evaluate_icl",
    "make_prompt",
    "make_tasks",
    "sample_sequence",
    "source_words",
]


class IclVocab:
    """Characters ↔ ids: the alphabet, the descriptions' letters, ``=>``, ``:``, space, newline.

    Args:
        alphabet: the letters words are made of.
    """

    def __init__(self, alphabet: str) -> None:
        specials = ["<pad>", "\n", " ", ":", "=>"]
        letters = sorted(set(alphabet) | set("traducircopiar"))
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


def source_words(alphabet: str, word_len: int, count: int, seed: int = 0) -> list[str]:
    """The ``count`` source words every dictionary translates, drawn once from all words."""
    words = ["".join(w) for w in itertools.product(alphabet, repeat=word_len)]
    rng = np.random.default_rng(seed)
    return sorted(words[i] for i in rng.choice(len(words), size=count, replace=False))


@dataclass(frozen=True)
class IclTask:
    """One task: ``"copiar"`` or ``"traducir"`` with its ``dictionary`` (source → target)."""

    description: str
    dictionary: tuple[tuple[str, str], ...] = ()

    def __call__(self, word: str) -> str:
        return word if self.description == "copiar" else dict(self.dictionary)[word]


def make_tasks(words: Sequence[str], alphabet: str, count: int, seed: int) -> list[IclTask]:
    """``count`` random ``traducir`` dictionaries over ``words`` (targets drawn with repetition)."""
    rng = np.random.default_rng(seed)
    word_len = len(words[0])
    tasks = []
    for _ in range(count):
        targets = ["".join(rng.choice(list(alphabet), size=word_len)) for _ in words]
        tasks.append(IclTask("traducir", tuple(zip(words, targets))))
    return tasks


def make_prompt(task: IclTask, demos: Sequence[str], query: str) -> str:
    """The prompt in the slide's format: description, ``k`` demonstrations, ``query
    =>``.

    Args:
        task: the task.
        demos: the demonstrations' source words (``k`` of them; none is zero-shot).
        query: the word to translate.

    Returns:
        ``"traducir:\\nab => fd\\n…\\nce =>"``; the answer is what follows.
    """
    lines = (
        [f"{task.description}:"]
        + [f"{w} => {task(w)}" for w in demos]
        + [f"{query} =>"]
    )
    return "\n".join(lines)


def sample_sequence(rng: np.random.Generator, tasks: Sequence[IclTask], words: Sequence[str],
                    num_demos: int, copy_share: float = 0.2) -> str:
    """A training text: a task's description and ``num_demos`` demonstrations of it."""
    task = IclTask("copiar") if rng.random() < copy_share else tasks[rng.integers(len(tasks))]
    demos = [words[i] for i in rng.integers(len(words), size=num_demos)]
    return "\n".join([f"{task.description}:"] + [f"{w} => {task(w)}" for w in demos]) + "\n"


@torch.no_grad()
def evaluate_icl(model, vocab: IclVocab, tasks: Sequence[IclTask], words: Sequence[str],
                 shots: Sequence[int], num_prompts: int, seed: int = 0) -> dict[int, dict[str, float]]:
    """Accuracy of greedy answers with ``k`` demonstrations in the prompt, for each ``k``.

    The same prompts serve every ``k``: the ``k``-shot prompt keeps the first ``k`` of a
    fixed list of demonstrations, so the values differ only by what the prompt shows.

    Args:
        model: a :class:`~vitcourse.models.GPT` over ``vocab``.
        vocab: the vocabulary.
        tasks: the tasks to draw from (held-out dictionaries for the real test).
        words: the source words.
        shots: the values of ``k``.
        num_prompts: prompts per ``k``.
        seed: seeds tasks, demonstrations and queries.

    Returns:
        ``{k: {"exact": fraction of answers entirely right, "seen": fraction of prompts
        whose demonstrations include the query}}``.
    """
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(num_prompts):
        task = tasks[rng.integers(len(tasks))]
        demos = [words[i] for i in rng.integers(len(words), size=max(shots))]
        cases.append((task, demos, words[rng.integers(len(words))]))
    model.eval()
    word_len = len(words[0])
    results = {}
    for k in shots:
        prompts = [vocab.encode(make_prompt(task, demos[:k], query) + " ") for task, demos, query in cases]
        length = len(prompts[0])  # every prompt of a k has the same length
        batch = torch.tensor(prompts)  # (num_prompts, length)
        answers = model.generate(batch, word_len, temperature=0)[:, length:]
        exact = sum(vocab.decode(a) == task(q) for a, (task, _, q) in zip(answers.tolist(), cases))
        seen = sum(q in demos[:k] for _, demos, q in cases)
        results[k] = {"exact": exact / len(cases), "seen": seen / len(cases)}
    return results
