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

import torch
from torch.utils.data import Dataset

from ..data.text import RECEIPT_FIELDS, generate_receipt
from .metrics import levenshtein
from .sequence import DonutTokenizer, json_to_sequence, sequence_to_json

__all__ = [
    "RECEIPT_CHARACTERS",
    "ReceiptDataset",
    "flatten_fields",
    "parse_receipt",
    "receipt_scores",
    "receipt_tokenizer",
]

RECEIPT_CHARACTERS = "abcdefghijklmnopqrstuvwxyzáéíóúüñ0123456789. "
"""Every character a receipt's values may hold."""

_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
MEAN, STD = 0.5, 0.5


def receipt_tokenizer() -> DonutTokenizer:
    """The tokenizer of the receipt Donut: ``<s_ticket>``, the tags of :data:`RECEIPT_FIELDS`, the characters."""
    return DonutTokenizer(RECEIPT_FIELDS, RECEIPT_CHARACTERS, task="<s_ticket>")


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

    Items:
        ``(image, tokens)``: ``(3, S, S)`` float32 normalised to about ``[-1, 1]``, and
        ``(max_len,)`` int64 ids (task token, text, ``</s>``, padding).
    """

    def __init__(
        self,
        split: str,
        size: int,
        seed: int = 0,
        img_size: int = 128,
        max_len: int = 96,
    ) -> None:
        if split not in _SPLIT_IDS:
            raise ValueError(f"split must be one of {list(_SPLIT_IDS)}, got {split!r}")
        self.split, self.size, self.seed = split, size, seed
        self.img_size, self.max_len = img_size, max_len
        self.tokenizer = receipt_tokenizer()

    def __len__(self) -> int:
        return self.size

    def receipt(self, index: int):
        """The :class:`~vitcourse.data.text.ReceiptSample` behind item ``index``."""
        return generate_receipt(
            (self.seed, _SPLIT_IDS[self.split], index), img_size=self.img_size
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.receipt(index)
        ids = self.tokenizer.encode(json_to_sequence(sample.fields))
        if len(ids) > self.max_len:
            raise ValueError(
                f"receipt {index} needs {len(ids)} tokens but max_len={self.max_len}"
            )
        tokens = torch.full((self.max_len,), self.tokenizer.pad_id, dtype=torch.long)
        tokens[: len(ids)] = torch.tensor(ids)
        return (sample.image - MEAN) / STD, tokens


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


def receipt_scores(
    true_texts: Sequence[str], predicted_texts: Sequence[str]
) -> dict[str, float]:
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
