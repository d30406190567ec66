"""Text for the language-model chapters: Spanish corpora, tokenisation, baselines, tasks."""

from .corpus import (
    BOOKS,
    SECTIONS,
    Book,
    Verse,
    clean_verse,
    fortunes_es,
    parallel_en_es,
    reina_valera,
    split_by_chapter,
)

__all__ = [
    "BOOKS",
    "SECTIONS",
    "Book",
    "Verse",
    "clean_verse",
    "fortunes_es",
    "parallel_en_es",
    "reina_valera",
    "split_by_chapter",
]
