"""OCR papers' numbers: Nougat's training data (the course's slide reproduces the table).

Nougat (Blecher et al., 2023) is a Donut-style model (Swin encoder, mBART decoder)
trained to turn pages of scientific papers into Markdown with LaTeX. Its training
pages come from three sources, as the paper's appendix table lists them and class 7's
slide copies: arXiv papers, PubMed Central (PMC) articles and the Industry Documents
Library (IDL).

The slide copies the paper's table as printed, including its total row, which is
**not** the sum of the three rows above it (those add up to 8,494,841 pages, 290,087
more than the printed 8,204,754). The book shows both numbers, computed here, and
does not guess which one is wrong.
"""

from __future__ import annotations

from . import Source

__all__ = [
    "DONUT_SOURCE",
    "NOUGAT_DATA",
    "NOUGAT_DATA_SOURCE",
    "NOUGAT_DATA_TOTAL",
    "NOUGAT_SOURCE",
]

NOUGAT_SOURCE = Source(
    authors="Blecher et al.",
    year=2023,
    title="Nougat: Neural Optical Understanding for Academic Documents",
    where="",
    arxiv="2308.13418",
    bibkey="blecher2023nougat",
)

NOUGAT_DATA_SOURCE = Source(
    authors=NOUGAT_SOURCE.authors,
    year=NOUGAT_SOURCE.year,
    title=NOUGAT_SOURCE.title,
    where="Table A.1 (Dataset composition)",
    arxiv=NOUGAT_SOURCE.arxiv,
    bibkey=NOUGAT_SOURCE.bibkey,
)

#: Nougat's training pages by source (Table A.1; the total row is left to the code).
NOUGAT_DATA: list[dict] = [
    {"source": "arXiv", "pages": 7_511_745},
    {"source": "PMC", "pages": 536_319},
    {"source": "IDL", "pages": 446_777},
]

#: The total row as the table prints it (not the sum of the rows: see the module's docstring).
NOUGAT_DATA_TOTAL = 8_204_754

DONUT_SOURCE = Source(
    authors="Kim et al.",
    year=2022,
    title="OCR-free Document Understanding Transformer",
    where="Section 2",
    arxiv="2111.15664",
    bibkey="kim2022donut",
)
