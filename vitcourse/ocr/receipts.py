"""Receipts for a tiny Donut: the data set, the tokenizer, and how to score a reading.

Each receipt (:func:`vitcourse.data.text.generate_receipt`) is an image and its JSON;
the target the decoder learns to write is the JSON as Donut's tagged text
(:func:`~vitcourse.ocr.sequence.json_to_sequence`), tokenised by
:func:`receipt_tokenizer`. Splits never share a receipt: each draws from its own seeds.

Two scores on held-out receipts:

* **CER** of the decoded text against the target text (every character and tag
  counts; tags are one token but several characters, so the CER is computed on the
  token sequence written as text);
* **field accuracy**: the share of the true fields (``tienda``, each item's ``nombre``
  and ``precio``, ``total``) that the parsed JSON holds with exactly the right value at
  the right place; and the share of receipts read entirely right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.text import RECEIPT_FIELDS, generate_receipt, load_font
from .metrics import levenshtein
from .sequence import SEP, DonutTokenizer, json_to_sequence, sequence_to_json

__all__ = [
    "LETTERS",
    "RECEIPT_CHARACTERS",
    "TASKS",
    "WORD_SOURCES",
    "ReceiptDataset",
    "character_boxes",
    "flatten_fields",
    "parse_receipt",
    "random_words",
    "receipt_scores",
    "receipt_target",
    "receipt_tokenizer",
]

RECEIPT_CHARACTERS = "abcdefghijklmnopqrstuvwxyzáéíóúüñ0123456789. "
"""Every character a receipt's values may hold."""

LETTERS = "abcdefghijklmnopqrstuvwxyzáéíóúüñ"
"""The letters of made-up words (``words="random"``)."""

TASKS: tuple[str, ...] = ("parse", "read")
"""What the decoder writes: the receipt's JSON (``"parse"``) or all its text, line by line (``"read"``)."""

WORD_SOURCES: tuple[str, ...] = ("spanish", "random")
"""Where the shop and item names come from: :data:`~vitcourse.data.text.WORDS`, or made-up letter strings."""

_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
MEAN, STD = 0.5, 0.5


def receipt_tokenizer() -> DonutTokenizer:
    """The tokenizer of the receipt Donut: ``<s_ticket>``, the tags of :data:`RECEIPT_FIELDS`, the characters."""
    return DonutTokenizer(RECEIPT_FIELDS, RECEIPT_CHARACTERS, task="<s_ticket>")


def random_words(seed: Sequence[int], n: int = 40, lengths: tuple[int, int] = (3, 9)) -> list[str]:
    """``n`` made-up words of ``lengths[0]`` to ``lengths[1]`` letters from :data:`LETTERS`.

    Names a language model cannot guess: the decoder has to read every letter from the image.
    """
    rng = np.random.default_rng(seed)
    letters = list(LETTERS)
    return ["".join(rng.choice(letters, size=int(rng.integers(lengths[0], lengths[1] + 1)))) for _ in range(n)]


def receipt_target(sample, task: str = "parse") -> str:
    """The text the decoder learns to write for a :class:`~vitcourse.data.text.ReceiptSample`.

    ``"parse"``: its JSON as Donut's tagged text. ``"read"``: every printed line, top to
    bottom, separated by ``<sep/>`` (the reading task of Donut's pre-training, where the
    model writes all the text of a page in reading order).
    """
    if task == "parse":
        return json_to_sequence(sample.fields)
    if task == "read":
        return SEP.join(sample.lines)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def character_boxes(sample, task: str = "parse") -> list[tuple[float, float, float, float] | None]:
    """Where each token of :func:`receipt_target` is printed: one ``(x0, y0, x1, y1)`` per token.

    The print is monospaced, so a character's box follows from its line's ink box and
    the font's advance: names start at the line's left edge, prices end at its right
    edge. Tokens that are not printed (tags, ``<sep/>``, the space between a name and
    its price) get ``None``. The first entry is the task token's, the last ``</s>``'s.

    Args:
        sample: a :class:`~vitcourse.data.text.ReceiptSample`.
        task: ``"parse"`` or ``"read"``, as in :func:`receipt_target`.
    """
    size = sample.image.shape[-1]
    advance = load_font(max(8, size // 10), "dejavu-mono").getlength("a")
    spans = {}  # (line, kind) -> (x0, y0, x1, y1) of each character
    for line, (text, box) in enumerate(zip(sample.lines, sample.boxes.tolist())):
        x0, y0, x1, y1 = box
        if line == 0:  # the shop's name alone
            name, price = text, ""
        else:  # an item's name, then its price (or the total's label and amount)
            name, _, price = text.rpartition(" ")
        spans[line, "name"] = [(x0 + k * advance, y0, x0 + (k + 1) * advance, y1) for k in range(len(name))]
        spans[line, "price"] = [
            (x1 - (len(price) - k) * advance, y0, x1 - (len(price) - k - 1) * advance, y1) for k in range(len(price))
        ]
    n_items = len(sample.fields["items"])
    if task == "read":
        pieces = []
        for line in range(len(sample.lines)):
            if line:
                pieces.append([None])  # <sep/>
            pieces.append(spans[line, "name"])
            if line:
                pieces.append([None])  # the space
                pieces.append(spans[line, "price"])
        out = [box for piece in pieces for box in piece]
    elif task == "parse":
        out = [None, *spans[0, "name"], None, None]  # <s_tienda> shop </s_tienda> <s_items>
        for i in range(n_items):
            if i:
                out.append(None)  # <sep/>
            out += [None, *spans[1 + i, "name"], None, None, *spans[1 + i, "price"], None]
        out += [None, None, *spans[1 + n_items, "price"], None]  # </s_items> <s_total> total </s_total>
    else:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return [None, *out, None]


def parse_receipt(text: str) -> dict:
    """The JSON of a decoded receipt (``items`` is always a list)."""
    parsed = sequence_to_json(text, lists=("items",))
    return parsed if isinstance(parsed, dict) else {}


class ReceiptDataset(Dataset):
    """Generated receipts with their token sequences.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (disjoint seeds).
        size: number of receipts.
        seed: base seed; receipt ``i`` of a split is ``generate_receipt((seed, split, i))``.
        img_size: side of the images.
        max_len: sequences are padded (with ``<pad>``) to this length.
        task: ``"parse"`` (write the JSON) or ``"read"`` (write the lines; see
            :func:`receipt_target`).
        words: ``"spanish"`` (names from :data:`~vitcourse.data.text.WORDS`) or
            ``"random"`` (made-up names, :func:`random_words`, new for every receipt).
        boxes: also return where each token is printed (:func:`character_boxes`).

    Items:
        ``(image, tokens)``: ``(3, S, S)`` float32 normalised to about ``[-1, 1]``, and
        ``(max_len,)`` int64 ids (task token, text, ``</s>``, padding); with ``boxes``
        a third, ``(max_len, 4)`` float32 pixel boxes, NaN where a token is not printed.
    """

    def __init__(
        self,
        split: str,
        size: int,
        seed: int = 0,
        img_size: int = 128,
        max_len: int = 96,
        task: str = "parse",
        words: str = "spanish",
        boxes: bool = False,
    ) -> None:
        if split not in _SPLIT_IDS:
            raise ValueError(f"split must be one of {list(_SPLIT_IDS)}, got {split!r}")
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if words not in WORD_SOURCES:
            raise ValueError(f"words must be one of {WORD_SOURCES}, got {words!r}")
        self.split, self.size, self.seed = split, size, seed
        self.img_size, self.max_len = img_size, max_len
        self.task, self.words, self.boxes = task, words, boxes
        self.tokenizer = receipt_tokenizer()

    def __len__(self) -> int:
        return self.size

    def receipt(self, index: int):
        """The :class:`~vitcourse.data.text.ReceiptSample` behind item ``index``."""
        seed = (self.seed, _SPLIT_IDS[self.split], index)
        if self.words == "random":  # other seeds than the Spanish receipts'
            return generate_receipt((*seed, 1), img_size=self.img_size, words=random_words((*seed, 2)))
        return generate_receipt(seed, img_size=self.img_size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        sample = self.receipt(index)
        ids = self.tokenizer.encode(receipt_target(sample, self.task))
        if len(ids) > self.max_len:
            raise ValueError(f"receipt {index} needs {len(ids)} tokens but max_len={self.max_len}")
        tokens = torch.full((self.max_len,), self.tokenizer.pad_id, dtype=torch.long)
        tokens[: len(ids)] = torch.tensor(ids)
        image = (sample.image - MEAN) / STD
        if not self.boxes:
            return image, tokens
        boxes = torch.full((self.max_len, 4), float("nan"))
        for i, box in enumerate(character_boxes(sample, self.task)):
            if box is not None:
                boxes[i] = torch.tensor(box)
        return image, tokens, boxes


def flatten_fields(obj: Any, prefix: str = "") -> dict[str, str]:
    """``{"items": [{"nombre": "pan"}]}`` → ``{"items.0.nombre": "pan"}``: one entry per leaf field."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            out.update(flatten_fields(value, f"{prefix}{key}."))
        return out
    if isinstance(obj, list):
        out = {}
        for i, value in enumerate(obj):
            out.update(flatten_fields(value, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): str(obj)}


def receipt_scores(true_texts: Sequence[str], predicted_texts: Sequence[str]) -> dict[str, float]:
    """CER, field accuracy and exact-match rate of decoded receipts.

    Args:
        true_texts: the target sequences (tagged text).
        predicted_texts: the decoded ones, paired.

    Returns:
        ``{"cer", "field_accuracy", "exact_match", "parsed"}`` (``parsed``: the share of
        predictions that parse into a non-empty JSON).
    """
    edits = sum(levenshtein(t, p) for t, p in zip(true_texts, predicted_texts))
    right = total = exact = parsed = 0
    for true_text, predicted_text in zip(true_texts, predicted_texts):
        truth, guess = (
            flatten_fields(parse_receipt(true_text)),
            flatten_fields(parse_receipt(predicted_text)),
        )
        right += sum(guess.get(key) == value for key, value in truth.items())
        total += len(truth)
        exact += truth == guess
        parsed += bool(guess)
    n = max(len(true_texts), 1)
    return {
        "cer": edits / max(sum(len(t) for t in true_texts), 1),
        "field_accuracy": right / max(total, 1),
        "exact_match": exact / n,
        "parsed": parsed / n,
    }
