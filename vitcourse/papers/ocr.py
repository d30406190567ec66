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
    "DONUT_BASE",
    "DONUT_BASE_SOURCE",
    "DONUT_SOURCE",
    "NOUGAT_DATA",
    "NOUGAT_DATA_SOURCE",
    "NOUGAT_DATA_TOTAL",
    "NOUGAT_SOURCE",
    "PIXTRAL_PARAMETERS",
    "PIXTRAL_SOURCE",
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

DONUT_BASE_SOURCE = Source(
    authors=DONUT_SOURCE.authors,
    year=DONUT_SOURCE.year,
    title=DONUT_SOURCE.title,
    where="Section 3 and the configuration of the released naver-clova-ix/donut-base",
    arxiv=DONUT_SOURCE.arxiv,
    bibkey=DONUT_SOURCE.bibkey,
)

#: The published Donut (``naver-clova-ix/donut-base``) at a glance.
DONUT_BASE: dict = {
    "encoder": "Swin-B",
    "encoder_depths": (2, 2, 14, 2),
    "window_size": 10,
    "image_size": (2560, 1920),  # height, width in pixels
    "decoder": "mBART",
    "decoder_layers": 4,
    "vocab_size": 57_525,  # multilingual SentencePiece pieces
}

PIXTRAL_SOURCE = Source(
    authors="Agrawal et al.",
    year=2024,
    title="Pixtral 12B",
    where="title and abstract",
    arxiv="2410.07073",
    bibkey="agrawal2024pixtral",
)

#: Pixtral's size, as its name says (a 12-billion-parameter multimodal decoder).
PIXTRAL_PARAMETERS = 12_000_000_000
