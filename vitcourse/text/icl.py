"""In-context learning at a size a CPU can train: many small tasks, inferred from the prompt.

GPT-3 was never trained on the tasks it was tested on; its training text happened to
contain demonstrations of many tasks, and predicting the next token of a demonstration
is easier for a model that works out the task from the ones before. At test time a
*prompt* gives a task description and ``k`` demonstrations (zero-, one- or few-shot),
and the model continues it, with no gradient update. One way to read this (Xie et al.
2022) is that the model infers a hidden *concept* from the prompt.

Here the same happens in miniature, with words as single tokens:

* ``adivinar:`` tasks each have a **secret answer**, a two-word phrase of a made-up
  language (:data:`FIRST_WORDS` × :data:`SECOND_WORDS`): whatever Spanish word
  (:data:`SOURCE_WORDS`) is asked, the answer is the secret. The demonstrations show it,
  but noisily: each one, with probability ``noise``, shows a random phrase instead. One
  demonstration is a guess; several, a vote;
* ``copiar:`` is one task that the description alone defines (the answer is the word).

A training sequence is a description and several demonstrations of one task::

    adivinar:
    sol => kru ta
    pan => kru ta
    mar => zap ne        <- noise
    ...

The secret phrases are split in two halves: training only ever uses one, evaluation
only the other, so every evaluated task is new to the model. There are many of them
(24 × 24), so that memorising the training half would barely help: a model that
instead learns to read the prompt does better on both halves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "DESCRIPTIONS",
    "FIRST_WORDS",
    "SECOND_WORDS",
    "SOURCE_WORDS",
    "IclTask",
    "IclVocab",
    "evaluate_icl",
    "make_prompt",
    "sample_sequence",
    "split_secrets",
]

#: The words the demonstrations ask about (one token each).
SOURCE_WORDS = ("sol", "luna", "mar", "pan", "flor", "agua", "casa", "perro")
#: The made-up language: an answer is a first word and a second word.
FIRST_WORDS = tuple(
    "bli kru zap mok tef gur nix pol vaz dro sem qua fen lor bax tup wim rok sal dun cey jor pif hul".split()
)
SECOND_WORDS = tuple("ta ro mi su ne lo pe ki da fu gi zo ba ce du fe ga hi jo ku ma no pu ri".split())
#: The task descriptions.
DESCRIPTIONS = ("adivinar", "copiar")
_TOKEN = re.compile(r"[^\s:]+ => |\n|:| [^\s:]+|[^\s:]+")


class IclVocab:
    """Words ↔ ids: a token per word and per description, ``":"`` and the newline.

    A source word and the arrow after it are **one** token (``"sol => "``), as a BPE
    vocabulary that saw them together often would merge them.

    Args:
        source: the words asked about.
    """

    def __init__(self, source: Sequence[str] = SOURCE_WORDS) -> None:
        queries = [f"{w} => " for w in source]
        seconds = [f" {w}" for w in SECOND_WORDS]  # a space, then the second word
        self.tokens = ["<pad>", "\n", ":", *DESCRIPTIONS, *queries, *source, *FIRST_WORDS, *seconds]
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.source = tuple(source)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Ids of a text: ``"sol => kru ta\\n"`` is four tokens."""
        return [self.ids[t] for t in _TOKEN.findall(text)]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ids (padding dropped)."""
        return "".join(self.tokens[i] for i in ids if i)


@dataclass(frozen=True)
class IclTask:
    """One task: ``"copiar"``, or ``"adivinar"`` with its ``secret`` phrase."""

    description: str
    secret: str = ""

    def __call__(self, word: str) -> str:
        return word if self.description == "copiar" else self.secret


def split_secrets(seed: int = 0) -> tuple[list[str], list[str]]:
    """Every secret phrase (first × second word), shuffled and cut in two halves.

    Returns:
        ``(training, evaluation)`` lists of phrases like ``"kru ta"``.
    """
    phrases = [f"{a} {b}" for a in FIRST_WORDS for b in SECOND_WORDS]
    order = np.random.default_rng(seed).permutation(len(phrases))
    half = len(phrases) // 2
    return [phrases[i] for i in order[:half]], [phrases[i] for i in order[half:]]


def make_prompt(task: IclTask, demos: Sequence[tuple[str, str]], query: str) -> str:
    """A prompt in the slide's format: description, demonstrations, ``query =>``.

    Args:
        task: the task (its description heads the prompt).
        demos: ``(word, answer shown)`` pairs; ``k`` of them, none is zero-shot.
        query: the word asked about.

    Returns:
        ``"adivinar:\\nsol => kru ta\\n…\\npan =>"``; the answer follows.
    """
    lines = [f"{task.description}:"] + [f"{w} => {answer}" for w, answer in demos]
    return "\n".join(lines + [f"{query} =>"])


def _demos(rng: np.random.Generator, task: IclTask, words: Sequence[str], count: int,
           noise: float) -> list[tuple[str, str]]:
    """``count`` demonstrations of ``task``; each shows a random phrase with probability ``noise``."""
    demos = []
    for _ in range(count):
        word = words[rng.integers(len(words))]
        answer = task(word)
        if task.description == "adivinar" and rng.random() < noise:
            answer = f"{FIRST_WORDS[rng.integers(len(FIRST_WORDS))]} {SECOND_WORDS[rng.integers(len(SECOND_WORDS))]}"
        demos.append((word, answer))
    return demos


def sample_sequence(rng: np.random.Generator, secrets: Sequence[str], words: Sequence[str], num_demos: int,
                    noise: float = 0.3, copy_share: float = 0.2) -> str:
    """A training text: a task's description and ``num_demos`` (noisy) demonstrations of it."""
    if rng.random() < copy_share:
        task = IclTask("copiar")
    else:
        task = IclTask("adivinar", secrets[rng.integers(len(secrets))])
    lines = [f"{task.description}:"] + [f"{w} => {a}" for w, a in _demos(rng, task, words, num_demos, noise)]
    return "\n".join(lines) + "\n"


@torch.no_grad()
def evaluate_icl(model, vocab: IclVocab, tasks: Sequence[IclTask], shots: Sequence[int], num_prompts: int,
                 noise: float = 0.3, seed: int = 0) -> dict[int, dict[str, float]]:
    """Accuracy of the greedy answer with ``k`` demonstrations in the prompt, for each ``k``.

    The same prompts serve every ``k``: the ``k``-shot prompt keeps the first ``k`` of a
    fixed list of demonstrations, so the values differ only by what the prompt shows.

    Args:
        model: a :class:`~vitcourse.models.GPT` over ``vocab``.
        vocab: the vocabulary.
        tasks: the tasks to draw from (secrets never trained on, for the real test).
        shots: the values of ``k``.
        num_prompts: prompts per ``k``.
        noise: the demonstrations' noise, as in training.
        seed: seeds tasks, demonstrations and queries.

    Returns:
        ``{k: {"exact": fraction of answers entirely right, "majority": fraction of
        prompts whose most frequent demonstrated answer is the right one}}``.
    """
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(num_prompts):
        task = tasks[rng.integers(len(tasks))]
        demos = _demos(rng, task, vocab.source, max(shots), noise)
        cases.append((task, demos, vocab.source[rng.integers(len(vocab.source))]))
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
            width = 2 if cases[indices[0]][0].description == "adivinar" else 1  # answer tokens
            answers = model.generate(batch, width, temperature=0)[:, length:]
            for i, answer in zip(indices, answers.tolist()):
                task, _, query = cases[i]
                right += vocab.decode(answer).strip() == task(query)
        majority = 0
        for task, demos, query in cases:
            shown = [a for _, a in demos[:k]]
            majority += bool(shown) and max(set(shown), key=shown.count) == task(query)
        results[k] = {"exact": right / len(cases), "majority": majority / len(cases)}
    return results
