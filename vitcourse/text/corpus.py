"""Spanish text that installs offline: the Reina-Valera 1909 Bible and Spanish quotations.

A language model needs a corpus. Two real Spanish ones come from Debian packages:

* **Reina-Valera 1909** (``sword-text-sparv``, public domain, read with ``diatheke``):
  31 102 verses, 4.4 MB, every one labelled with its book, chapter and verse. It is
  the chapter's corpus: large enough for a tiny GPT to learn Spanish spelling, words and
  syntax in minutes, in one consistent style (1909 orthography: ``á`` as a preposition,
  ``fué``), and its labels give a supervised task for free (which part of the Bible a
  verse comes from).
* **fortunes-es**: about 1 MB of quotations in 40-odd themed files (love, science,
  Murphy's laws, …): modern Spanish, but a fifth of the size, many authors and styles.

``diatheke`` prints ``Book C:V: text`` per verse with Strong's numbers in angle brackets
(``Jesucristo <G5547>``) and each chapter's first word in capitals (a printer's drop
cap, ``EN el principio``); :func:`clean_verse` removes both. The parsed verses are kept
in a cache file, so ``diatheke`` runs once per machine.
"""

from __future__ import annotations

import csv
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data import sources
from ..data.remote import DataUnavailableError, data_root

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


@dataclass(frozen=True)
class Book:
    """A book of the Bible: ``diatheke``'s English name, its Spanish name, its section."""

    key: str
    name: str
    section: str


#: The six traditional sections, in order (the classes of the supervised task).
SECTIONS = ("Pentateuco", "Históricos", "Poéticos", "Profetas", "Evangelios y Hechos", "Epístolas")

# diatheke's English names, in order, and the Spanish ones, section by section.
_BOOKS = (
    ("Genesis Exodus Leviticus Numbers Deuteronomy",
     "Génesis, Éxodo, Levítico, Números, Deuteronomio"),
    ("Joshua Judges Ruth I_Samuel II_Samuel I_Kings II_Kings I_Chronicles II_Chronicles Ezra Nehemiah Esther",
     "Josué, Jueces, Rut, 1 Samuel, 2 Samuel, 1 Reyes, 2 Reyes, 1 Crónicas, 2 Crónicas, Esdras, Nehemías, Ester"),
    ("Job Psalms Proverbs Ecclesiastes Song_of_Solomon",
     "Job, Salmos, Proverbios, Eclesiastés, Cantares"),
    ("Isaiah Jeremiah Lamentations Ezekiel Daniel Hosea Joel Amos Obadiah Jonah Micah Nahum Habakkuk Zephaniah "
     "Haggai Zechariah Malachi",
     "Isaías, Jeremías, Lamentaciones, Ezequiel, Daniel, Oseas, Joel, Amós, Abdías, Jonás, Miqueas, Nahúm, "
     "Habacuc, Sofonías, Hageo, Zacarías, Malaquías"),
    ("Matthew Mark Luke John Acts", "Mateo, Marcos, Lucas, Juan, Hechos"),
    ("Romans I_Corinthians II_Corinthians Galatians Ephesians Philippians Colossians I_Thessalonians "
     "II_Thessalonians I_Timothy II_Timothy Titus Philemon Hebrews James I_Peter II_Peter I_John II_John III_John "
     "Jude Revelation_of_John",
     "Romanos, 1 Corintios, 2 Corintios, Gálatas, Efesios, Filipenses, Colosenses, 1 Tesalonicenses, "
     "2 Tesalonicenses, 1 Timoteo, 2 Timoteo, Tito, Filemón, Hebreos, Santiago, 1 Pedro, 2 Pedro, 1 Juan, 2 Juan, "
     "3 Juan, Judas, Apocalipsis"),
)
#: The 66 books in order, keyed by ``diatheke``'s English name.
BOOKS: dict[str, Book] = {
    key.replace("_", " "): Book(key.replace("_", " "), name, section)
    for (keys, names), section in zip(_BOOKS, SECTIONS, strict=True)
    for key, name in zip(keys.split(), names.split(", "), strict=True)
}


@dataclass(frozen=True)
class Verse:
    """One verse: ``book`` (Spanish name), ``section``, ``chapter``, ``verse``, ``text``."""

    book: str
    section: str
    chapter: int
    verse: int
    text: str


_STRONG = re.compile(r"\s*<[GH]\d+>")
_LINE = re.compile(r"^(?P<book>.+?) (?P<chapter>\d+):(?P<verse>\d+): (?P<text>.*)$")


def clean_verse(text: str) -> str:
    """Remove ``diatheke``'s markup from a verse.

    Strong's numbers (``<G5547>``) go, whitespace collapses, and a chapter's capitalised
    first word (``EN el principio``) becomes ``En el principio``.

    Args:
        text: the verse as ``diatheke`` prints it, after ``Book C:V:``.

    Returns:
        The plain verse.
    """
    text = " ".join(_STRONG.sub("", text).split())
    first, _, rest = text.partition(" ")
    if len(first) > 1 and first.isupper() and rest:  # a drop cap, not "YO" alone
        text = f"{first[0]}{first[1:].lower()} {rest}"
    return text


def _run_diatheke(module: str) -> str:
    command = ["diatheke", "-b", module, "-f", "plain", "-k", "Gen 1:1 - Rev 22:21"]
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=300).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise DataUnavailableError(
            f"diatheke could not print the Reina-Valera ({error}); install it: sudo apt-get install "
            f"{sources.SOURCES['reina_valera'].package}"
        ) from error


def _parse(output: str) -> list[Verse]:
    verses = []
    for line in output.splitlines():
        match = _LINE.match(line)
        if match is None or match["book"] not in BOOKS:
            continue  # the trailing "(spaRV1909eb)" line
        book = BOOKS[match["book"]]
        text = clean_verse(match["text"])
        if text:
            verses.append(Verse(book.name, book.section, int(match["chapter"]), int(match["verse"]), text))
    return verses


def reina_valera(cache: str | Path | None = None) -> list[Verse]:
    """Every verse of the Reina-Valera 1909, in order, without markup.

    The first call runs ``diatheke`` (a few seconds) and writes a TSV cache; later calls
    read it.

    Args:
        cache: the cache file (default ``<data_root>/text/reina_valera_1909.tsv``).

    Returns:
        A list of :class:`Verse` (31 102 of them).

    Raises:
        DataUnavailableError: the Debian packages ``sword-text-sparv`` and ``diatheke``
            are not installed; the message gives the ``apt-get`` line.
    """
    cache = Path(cache) if cache else data_root() / "text" / "reina_valera_1909.tsv"
    if not cache.exists():
        sources.path("reina_valera")  # raises with the install hint if the module is missing
        verses = _parse(_run_diatheke("spaRV1909eb"))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
            writer.writerows((v.book, v.section, v.chapter, v.verse, v.text) for v in verses)
        tmp.replace(cache)
    with cache.open(encoding="utf-8", newline="") as f:
        return [Verse(b, s, int(c), int(v), t) for b, s, c, v, t in csv.reader(f, delimiter="\t")]


def split_by_chapter(verses: Sequence[Verse], every: int = 10) -> tuple[list[Verse], list[Verse]]:
    """Train/validation split by whole chapters: every ``every``-th chapter is held out.

    Holding out whole chapters (rather than random verses) keeps a verse's neighbours,
    which share names and phrases, out of the other side; taking every tenth chapter
    spreads the held-out text over every book.

    Args:
        verses: in order, from :func:`reina_valera`.
        every: one chapter in ``every`` goes to validation.

    Returns:
        ``(train, validation)``.
    """
    train, val, index, last = [], [], -1, None
    for verse in verses:
        if (verse.book, verse.chapter) != last:
            index, last = index + 1, (verse.book, verse.chapter)
        (val if index % every == every - 1 else train).append(verse)
    return train, val


def fortunes_es() -> dict[str, list[str]]:
    """The Spanish quotations of Debian's ``fortunes-es``, by theme.

    Returns:
        ``{theme: [quotation, …]}`` with the theme from the file name (``"amistad"``,
        ``"ciencia"``, …); each quotation's lines joined by newlines.

    Raises:
        DataUnavailableError: ``fortunes-es`` is not installed.
    """
    folder = sources.path("fortunes_es")
    themes = {}
    for path in sorted(folder.glob("*.fortunes.u8")) or sorted(folder.glob("*.fortunes")):
        raw = path.read_bytes().decode("utf-8", errors="replace")
        quotes = [q.strip() for q in raw.split("\n%\n") if q.strip()]
        themes[path.name.split(".")[0]] = quotes
    return themes


def parallel_en_es() -> list[tuple[str, str]]:
    """English sentences and their Spanish translations, from Sphinx's message catalogue.

    Every program translated with gettext ships pairs of an English message and its
    translation; Sphinx (installed with the book's tools) has about 700 in Spanish:
    short interface strings and full sentences. ``%s``-style placeholders are kept (they
    cost the same in both languages).

    Returns:
        ``[(english, spanish), …]``, sorted by the English text, identical pairs dropped.

    Raises:
        DataUnavailableError: Sphinx is not installed.
    """
    import gettext

    with sources.path("sphinx_es").open("rb") as f:
        catalog = gettext.GNUTranslations(f)._catalog
    pairs = {
        (en.strip(), es.strip())
        for en, es in catalog.items()
        if isinstance(en, str) and en.strip() and isinstance(es, str) and es.strip() and en != es
    }
    return sorted(pairs)
