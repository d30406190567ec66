"""In-context learning at a size a CPU can train: many small tasks, learnt from the prompt.

GPT-3 was never trained to translate; its training text happened to contain
demonstrations of such tasks, and predicting the next token of a demonstration is
easier for a model that works out the task from the ones before. At test time a
*prompt* gives a task description and ``k`` demonstrations (zero-, one- or few-shot),
and the model continues it, with no gradient update.

Here the same happens in miniature, with words as single tokens:

* ``traducir:`` tasks are **secret dictionaries**: each of a few Spanish words
  (:data:`SOURCE_WORDS`) gets a random translation into a made-up language
  (:data:`TARGET_WORDS`), drawn anew for every task. Nothing but the demonstrations
  says what the translation is;
* ``copiar:`` is one task the description alone defines (the answer is the word).

A training sequence is a description and several demonstrations of one task::

    traducir:
    sol => kru
    pan => vaz
    sol => kru
    ...

Training draws dictionaries from a fixed pool; evaluation uses dictionaries drawn with
another seed, so every evaluated ``traducir`` task is new to the model. With k = 0 it
can only guess; each demonstration may show the query's translation, which the model
must find and copy (the mechanism of *induction heads*, Olsson et al. 2022).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "DESCRIPTIONS",
    "SOURCE_WORDS",
    "TARGET_WORDS",
    "IclTask",
    "IclVocab",
    "evaluate_icl",
    "make_prompt",
    "make_tasks",
    "sample_sequence",
]

#: The words every dictionary translates (one token each).
SOURCE_WORDS = ("sol", "luna", "mar", "pan", "flor", "agua", "casa", "perro")
#: The made-up language the dictionaries translate into.
TARGET_WORDS = ("bli", "kru", "zap", "mok", "tef", "gur", "nix", "pol", "vaz", "dro", "sem", "qua")
#: The task descriptions.
DESCRIPTIONS = ("traducir", "copiar")
_TOKEN = re.compile(r" => |\n|:|[^\s:]+")


class IclVocab:
    """Words ↔ ids: a token per word and per description, and ``" => "``, ``":"``, newline.

    Args:
        source: the words to translate.
        target: the words of the made-up language.
    """

    def __init__(self, source: Sequence[str] = SOURCE_WORDS, target: Sequence[str] = TARGET_WORDS) -> None:
        self.tokens = ["<pad>", "\n", " => ", ":", *DESCRIPTIONS, *source, *target]
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.source, self.target = tuple(source), tuple(target)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Ids of a text: ``"sol => kru\\n"`` is four tokens."""
        return [self.ids[t] for t in _TOKEN.findall(text)]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ids (padding dropped)."""
        return "".join(self.tokens[i] for i in ids if i)


@dataclass(frozen=True)
class IclTask:
    """One task: ``"copiar"`` or ``"traducir"`` with its ``dictionary`` (source → target)."""

    description: str
    dictionary: tuple[tuple[str, str], ...] = ()

    def __call__(self, word: str) -> str:
        return word if self.description == "copiar" else dict(self.dictionary)[word]


def make_tasks(vocab: IclVocab, count: int, seed: int) -> list[IclTask]:
    """``count`` random ``traducir`` dictionaries: each source word, a random target word."""
    rng = np.random.default_rng(seed)
    tasks = []
    for _ in range(count):
        targets = [vocab.target[i] for i in rng.integers(len(vocab.target), size=len(vocab.source))]
        tasks.append(IclTask("traducir", tuple(zip(vocab.source, targets))))
    return tasks


def make_prompt(task: IclTask, demos: Sequence[str], query: str) -> str:
    """A prompt in the slide's format: description, demonstrations, ``query =>``.

    Args:
        task: the task.
        demos: the demonstrations' words (``k`` of them; none is zero-shot).
        query: the word to translate.

    Returns:
        ``"traducir:\\nsol => kru\\n…\\npan =>"``; the answer follows.
    """
    lines = [f"{task.description}:"] + [f"{w} => {task(w)}" for w in demos]
    return "\n".join(lines + [f"{query} =>"])


def sample_sequence(rng: np.random.Generator, tasks: Sequence[IclTask], words: Sequence[str],
                    num_demos: int, copy_share: float = 0.2) -> str:
    """A training text: a task's description and ``num_demos`` demonstrations of it."""
    task = IclTask("copiar") if rng.random() < copy_share else tasks[rng.integers(len(tasks))]
    demos = [words[i] for i in rng.integers(len(words), size=num_demos)]
    return "\n".join([f"{task.description}:"] + [f"{w} => {task(w)}" for w in demos]) + "\n"


@torch.no_grad()
def evaluate_icl(model, vocab: IclVocab, tasks: Sequence[IclTask], shots: Sequence[int], num_prompts: int,
                 seed: int = 0) -> dict[int, dict[str, float]]:
    """Accuracy of the greedy answer with ``k`` demonstrations in the prompt, for each ``k``.

    The same prompts serve every ``k``: the ``k``-shot prompt keeps the first ``k`` of a
    fixed list of demonstrations, so the values differ only by what the prompt shows.

    Args:
        model: a :class:`~vitcourse.models.GPT` over ``vocab``.
        vocab: the vocabulary.
        tasks: the tasks to draw from (dictionaries never trained on, for the real test).
        shots: the values of ``k``.
        num_prompts: prompts per ``k``.
        seed: seeds tasks, demonstrations and queries.

    Returns:
        ``{k: {"exact": fraction of right answers, "seen": fraction of prompts whose
        demonstrations include the query}}``.
    """
    rng = np.random.default_rng(seed)
    words = vocab.source
    cases = []
    for _ in range(num_prompts):
        task = tasks[rng.integers(len(tasks))]
        demos = [words[i] for i in rng.integers(len(words), size=max(shots))]
        cases.append((task, demos, words[rng.integers(len(words))]))
    model.eval()
    results = {}
    for k in shots:
        prompts = [vocab.encode(make_prompt(task, demos[:k], query) + " ") for task, demos, query in cases]
        by_length: dict[int, list[int]] = {}
        for i, prompt in enumerate(prompts):  # one batch per prompt length: no padding
            by_length.setdefault(len(prompt), []).append(i)
        right = 0
        for length, indices in by_length.items():
            batch = torch.tensor([prompts[i] for i in indices])  # (b, length)
            answers = model.generate(batch, 1, temperature=0)[:, length]  # one word, one token
            right += sum(vocab.tokens[a] == cases[i][0](cases[i][2]) for i, a in zip(indices, answers.tolist()))
        seen = sum(q in demos[:k] for _, demos, q in cases)
        results[k] = {"exact": right / len(cases), "seen": seen / len(cases)}
    return results
