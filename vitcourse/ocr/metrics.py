"""How wrong a transcription is: character and word error rates (CER, WER).

Both count the edits that turn the reference into the hypothesis (the Levenshtein
distance): substitutions ``S``, deletions ``D`` and insertions ``I``, over the length
``N`` of the reference, in characters or in words::

    CER = (S + D + I) / N_chars        WER = (S + D + I) / N_words

Insertions make both exceed 1 when a system invents more than the reference holds.
Over several lines the edits and the lengths are summed first (a corpus rate, not a
mean of rates), as ``jiwer`` does; :func:`levenshtein` is the readable version of what
``jiwer`` computes, and a test proves the two agree.

Before comparing, :func:`normalize_text` collapses runs of whitespace: an engine that
returns ``"us   first"`` or breaks a paragraph into lines has not misread a character.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["cer", "levenshtein", "normalize_text", "wer"]


def normalize_text(text: str) -> str:
    """Collapse each run of whitespace (spaces, tabs, line breaks) to one space; strip the ends."""
    return " ".join(text.split())


def levenshtein(reference: Sequence, hypothesis: Sequence) -> int:
    """Edit distance: fewest substitutions, deletions, insertions from one to the other.

    Dynamic programming over prefixes, one row at a time: ``row[j]`` is the distance
    between the reference's first ``i`` items and the hypothesis's first ``j``.

    Args:
        reference: a string (characters) or a list of words.
        hypothesis: the same kind.

    Returns:
        The edit distance, an ``int`` from ``|len(ref) - len(hyp)|`` to
        ``max(len(ref), len(hyp))``.
    """
    row = list(range(len(hypothesis) + 1))  # from the empty reference: j insertions
    for i, ref_item in enumerate(reference, start=1):
        previous, row[0] = row[0], i  # to the empty hypothesis: i deletions
        for j, hyp_item in enumerate(hypothesis, start=1):
            substitute = previous + (ref_item != hyp_item)
            previous = row[j]
            row[j] = min(
                substitute, row[j] + 1, row[j - 1] + 1
            )  # substitute, delete, insert
    return row[-1]


def _error_rate(
    references: str | Sequence[str], hypotheses: str | Sequence[str], split
) -> float:
    if isinstance(references, str) != isinstance(hypotheses, str):
        raise TypeError(
            "give two strings, or two lists of strings (one per line), not a mix"
        )
    if isinstance(references, str):
        references, hypotheses = [references], [hypotheses]
    if len(references) != len(hypotheses):
        raise ValueError(
            f"{len(references)} references but {len(hypotheses)} hypotheses; pair them one to one"
        )
    pairs = [
        (split(normalize_text(r)), split(normalize_text(h)))
        for r, h in zip(references, hypotheses)
    ]
    total = sum(len(ref) for ref, _ in pairs)
    if total == 0:
        raise ValueError(
            "the references are empty: an error rate needs at least one reference character"
        )
    return sum(levenshtein(ref, hyp) for ref, hyp in pairs) / total


def cer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Character error rate after :func:`normalize_text`: edits over reference characters.

    Args:
        references: the true text, or one per line.
        hypotheses: what the system read, paired with ``references``.

    Returns:
        ``sum(edits) / sum(len(reference))``; 0 is perfect and it can exceed 1.
    """
    return _error_rate(references, hypotheses, list)


def wer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Word error rate after :func:`normalize_text`: word edits over reference words (as :func:`cer`)."""
    return _error_rate(references, hypotheses, str.split)
