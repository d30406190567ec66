"""Numbers reported by papers and slides, as data with their source.

The book never types a paper's number into its prose: it reads it from here and
cites the source printed next to it. One module per paper or topic (``gpt.py``,
``detr.py``, …); each table is a list of rows (dicts, ready for ``pandas.DataFrame``)
and carries a :class:`Source` saying exactly where the numbers come from::

    from vitcourse.papers import gpt
    pd.DataFrame(gpt.GPT3_MODELS)        # the table
    gpt.GPT3_MODELS_SOURCE.citation()    # "Brown et al. 2020, arXiv:2005.14165, Table 2.1"

Where the course's slides and the paper disagree, both are recorded and the module's
docstring says which the book uses and why.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Source"]


@dataclass(frozen=True)
class Source:
    """Where a reported number comes from.

    Attributes:
        authors: short form, e.g. ``"Brown et al."``.
        year: publication year.
        title: the paper's title.
        where: the table, figure or section, e.g. ``"Table 2.1"``.
        arxiv: the arXiv identifier, if any (``"2005.14165"``).
        bibkey: the entry's key in ``book/references.bib``, for ``{cite}`` in the book.
    """

    authors: str
    year: int
    title: str
    where: str
    arxiv: str | None = None
    bibkey: str | None = None

    def citation(self) -> str:
        """One line for a table caption: ``"Brown et al. 2020, arXiv:2005.14165, Table 2.1"``."""
        parts = [f"{self.authors} {self.year}"]
        if self.arxiv:
            parts.append(f"arXiv:{self.arxiv}")
        parts.append(self.where)
        return ", ".join(parts)
