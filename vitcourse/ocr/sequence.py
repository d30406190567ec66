"""Donut's output format: JSON written as a token sequence, and read back.

Donut does not return boxes and strings for a later parser: its decoder writes the
answer itself, as text with XML-like field tags, and a few lines turn that text into
JSON. A list becomes its items separated by ``<sep/>``::

    {"tienda": "luna", "items": [{"nombre": "pan", "precio": "2.50"}], "total": "2.50"}
    <s_tienda>luna</s_tienda><s_items><s_nombre>pan</s_nombre><s_precio>2.50</s_precio>
    </s_items><s_total>2.50</s_total>          (one line, broken here to fit)

The decoder starts from a **task token** (the prompt: ``<s_ticket>`` here; Donut's
fine-tuned models use ``<s_cord-v2>``, ``<s_docvqa>``…) and stops at ``</s>``.

:class:`DonutTokenizer` maps that text to ids: every tag is one token, every other
character is one token (the real Donut uses a 57 000-piece multilingual
SentencePiece vocabulary; a tiny model reading receipts needs only characters).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

__all__ = ["DonutTokenizer", "json_to_sequence", "sequence_to_json"]

SEP = "<sep/>"


def json_to_sequence(obj: Any) -> str:
    """Write a JSON-like value (dicts, lists, strings) as Donut's tagged text.

    Args:
        obj: a dict of fields, a list, or a string (nesting allowed).

    Returns:
        The sequence, without task token or ``</s>``.
    """
    if isinstance(obj, dict):
        return "".join(
            f"<s_{key}>{json_to_sequence(value)}</s_{key}>"
            for key, value in obj.items()
        )
    if isinstance(obj, list):
        return SEP.join(json_to_sequence(item) for item in obj)
    return str(obj)


_OPEN = re.compile(r"<s_([^>]+)>")


def sequence_to_json(sequence: str, lists: Collection[str] = ()) -> Any:
    """Read Donut's tagged text back into JSON, forgiving what a model gets wrong.

    A field whose closing tag is missing is dropped (as Donut's ``token2json`` does);
    text outside any tag is ignored; a field holding ``<sep/>`` becomes a list.

    Args:
        sequence: the decoded text (the task token and ``</s>`` may be present).
        lists: keys that are lists even with one item (the text can't tell
            ``[{...}]`` from ``{...}``).

    Returns:
        A dict (possibly empty), or a string when ``sequence`` holds no tags.
    """
    sequence = sequence.replace("</s>", "")
    if not _OPEN.search(sequence):
        return sequence.strip()
    out: dict[str, Any] = {}
    while match := _OPEN.search(sequence):
        key = match.group(1)
        close = f"</s_{key}>"
        end = sequence.find(close, match.end())
        if end < 0:  # never closed: skip this opening tag
            sequence = sequence[match.end() :]
            continue
        inner = sequence[match.end() : end]
        if SEP in inner or key in lists:
            out[key] = [sequence_to_json(part, lists) for part in inner.split(SEP)]
        else:
            out[key] = sequence_to_json(inner, lists) if _OPEN.search(inner) else inner
        sequence = sequence[end + len(close) :]
    return out


class DonutTokenizer:
    """Characters plus one token per tag: text ↔ ids for a tiny Donut.

    Args:
        fields: the JSON keys; each gets ``<s_key>`` and ``</s_key>``.
        characters: every character the values may hold.
        task: the task token that starts every sequence.

    Attributes:
        pad_id, eos_id, task_id: ids of ``<pad>``, ``</s>`` and the task token.
        vocab: the tokens; ``vocab[i]`` is id ``i``.
    """

    def __init__(
        self, fields: Sequence[str], characters: str, task: str = "<s_ticket>"
    ) -> None:
        if len(set(characters)) != len(characters):
            raise ValueError(f"characters must not repeat, got {characters!r}")
        tags = [tag for field in fields for tag in (f"<s_{field}>", f"</s_{field}>")]
        self.specials = ["<pad>", "</s>", task, SEP, *tags]
        self.vocab = [*self.specials, *characters]
        self.ids = {token: i for i, token in enumerate(self.vocab)}
        self.pad_id, self.eos_id, self.task_id = 0, 1, 2
        self.task = task
        # longest tags first, so that "</s_items>" is never read as "</s>" + "_items>"
        self._pattern = re.compile(
            "|".join(re.escape(t) for t in sorted(self.specials, key=len, reverse=True))
            + "|."
        )

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(
        self, text: str, add_task: bool = True, add_eos: bool = True
    ) -> list[int]:
        """Ids of ``text``: ``[task] + tokens + [</s>]``.

        Raises:
            ValueError: a character outside the vocabulary (the message names it).
        """
        ids = [self.task_id] if add_task else []
        for token in self._pattern.findall(text):
            if token not in self.ids:
                raise ValueError(
                    f"{token!r} is not in the tokenizer's vocabulary; add it to `characters`"
                )
            ids.append(self.ids[token])
        return ids + ([self.eos_id] if add_eos else [])

    def decode(self, ids: Sequence[int], stop_at_eos: bool = True) -> str:
        """Text of ``ids`` without ``<pad>`` and the task token, up to the first ``</s>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id and stop_at_eos:
                break
            if i not in (self.pad_id, self.task_id, self.eos_id):
                out.append(self.vocab[i])
        return "".join(out)
