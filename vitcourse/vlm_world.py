"""Questions and answers in Spanish about the generated world, for chapter 5's VLM.

Every image (one to three shapes, 32×32) gives its questions, each with a one-word
answer read off the drawing:

* ``"¿cuántas figuras hay?"`` → ``una``, ``dos``, ``tres``;
* ``"¿de qué color es el triángulo?"`` → ``rojo`` (only for a shape class that appears
  once in the image);
* ``"¿de qué tamaño es la estrella?"`` → ``pequeña``, ``mediana``, ``grande``.

The answer is predicted at the question's last token (``?``), as the next token.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .clip_world import preprocess
from .data.backgrounds import COLORS
from .data.captions import _SIZES_ES, SIZES, size_index
from .data.shapes import SHAPES
from .data.world import WorldConfig, generate

__all__ = ["QA", "QA_WORLD", "QATokenizer", "accuracy_by_kind", "make_qa", "predict"]

#: The VLM's world: 32×32 images with one to three shapes.
QA_WORLD = WorldConfig(img_size=32, min_shapes=1, max_shapes=3)

_COUNTS = ("una", "dos", "tres")


def _words() -> list[str]:
    words = {"¿", "?", "de", "qué", "color", "es", "el", "la", "cuántas", "figuras"}
    words |= {"hay", "tamaño", *_COUNTS}
    for shape in SHAPES.values():
        words.update(shape.name_es.split())
    for color in COLORS.values():
        words |= {color.es_masculine, color.es_feminine}
    for forms in _SIZES_ES.values():
        words.update(forms)
    return sorted(words)


class QATokenizer:
    """Words of the questions and answers: ``<pad>`` 0, ``<sot>`` 1, then the words."""

    def __init__(self) -> None:
        self.tokens = ["<pad>", "<sot>", *_words()]
        self.ids = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, text: str) -> list[str]:
        """Words, with ``¿`` and ``?`` on their own."""
        return text.replace("¿", "¿ ").replace("?", " ?").split()

    def __call__(self, questions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids (B, L), last (B,))``: right-padded ids and each question's last
        position (where its answer is read)."""
        rows = [[self.ids["<sot>"], *(self.ids[w] for w in self.split(q))] for q in questions]
        width = max(map(len, rows))
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return ids, torch.tensor([len(r) - 1 for r in rows])

    def answer_ids(self, answers: Sequence[str]) -> torch.Tensor:
        """The id of each one-word answer."""
        return torch.tensor([self.ids[a] for a in answers])


@dataclass
class QA:
    """Questions about images.

    Attributes:
        images: ``(n_images, 3, 32, 32)`` in ``[0, 1]``.
        image_index: which image each question is about.
        questions, answers, kinds: per question (kind: ``"count"``, ``"color"``,
            ``"size"``).
    """

    images: torch.Tensor
    image_index: torch.Tensor
    questions: list[str]
    answers: list[str]
    kinds: list[str]


def make_qa(n_images: int, seed: int, split: int, config: WorldConfig = QA_WORLD) -> QA:
    """Every question of ``n_images`` world images (seeds ``(seed, split, index)``)."""
    images, index, questions, answers, kinds = [], [], [], [], []
    side = min(config.img_size)
    for i in range(n_images):
        sample = generate((seed, split, i), config)
        images.append(sample.image)
        n = len(sample.shapes)
        index.append(i)
        questions.append("¿cuántas figuras hay?")
        answers.append(_COUNTS[n - 1])
        kinds.append("count")
        once = [s for s in sample.shapes if Counter(x.shape for x in sample.shapes)[s.shape] == 1]
        for s in once:
            kind = SHAPES[s.shape]
            article = ("el", "la")[int(kind.feminine)]
            paint = COLORS[s.color]
            index.append(i)
            questions.append(f"¿de qué color es {article} {kind.name_es}?")
            answers.append((paint.es_masculine, paint.es_feminine)[int(kind.feminine)])
            kinds.append("color")
            index.append(i)
            questions.append(f"¿de qué tamaño es {article} {kind.name_es}?")
            size = SIZES[size_index(s.radius, side)]
            answers.append(_SIZES_ES[size][int(kind.feminine)])
            kinds.append("size")
    return QA(torch.stack(images), torch.tensor(index), questions, answers, kinds)


@torch.no_grad()
def predict(model, tokenizer: QATokenizer, qa: QA, batch_size: int = 256) -> list[str]:
    """The model's one-word answer to every question of ``qa``."""
    model.eval()
    features = None
    if model.config.use_image:
        features = torch.cat(
            [
                model.image_features(preprocess(qa.images[i : i + batch_size]))
                for i in range(0, len(qa.images), batch_size)
            ]
        )
    out = []
    for start in range(0, len(qa.questions), batch_size):
        ids, last = tokenizer(qa.questions[start : start + batch_size])
        feats = None
        if features is not None:
            feats = features[qa.image_index[start : start + batch_size]]
        logits = model(ids, image_features=feats)  # (B, L, V)
        best = logits[torch.arange(len(ids)), last].argmax(dim=-1)
        out += [tokenizer.tokens[i] for i in best.tolist()]
    return out


def accuracy_by_kind(qa: QA, predicted: Sequence[str]) -> dict[str, float]:
    """Accuracy over all questions and per kind of question."""
    right = [p == a for p, a in zip(predicted, qa.answers)]
    out = {"all": sum(right) / len(right)}
    for kind in ("count", "color", "size"):
        hits = [r for r, k in zip(right, qa.kinds) if k == kind]
        out[kind] = sum(hits) / len(hits)
    return {k: round(v, 4) for k, v in out.items()}
