"""A TP's folder and its ``tp.yml``: where its source, notebooks, page and checks are.

Every TP lives in a folder (``exercises/tp1/``) with a small ``tp.yml``; every field
has a default, so for TP1 it can be as short as ``key: tp1``::

    key: tp1                           # the checks' prefix: check("tp1.learned_pos", ...)
    checks: vitcourse.grading.tp1      # the module that declares the parts and tests
    source: tp1.md                     # the solved notebook (MyST; tp1.ipynb is its pair)
    student: tp1_alumno.ipynb          # the student notebook, generated (`make tps`)
    page: book/tps/tp1.md              # the book page, generated; null for none
    assets: [tp1_point.ipynb]          # files the notebook opens, copied next to a submission
    pythonpath: []                     # folders (relative to the TP) to import the checks from;
                                       # submissions can read them: no solutions there
    timeout: 900                       # grading: seconds for a whole submission
    cell_timeout: 300                  # grading: seconds for one cell
    test_timeout: 30                   # grading: seconds for one test of the student's code
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["TPConfig", "load_tp"]

KNOWN_FIELDS = {
    "key",
    "checks",
    "source",
    "student",
    "page",
    "assets",
    "pythonpath",
    "timeout",
    "cell_timeout",
    "test_timeout",
}


@dataclass
class TPConfig:
    """A TP folder, resolved: every path absolute.

    Attributes:
        folder: the TP's folder.
        key: the assignment key (``"tp1"``).
        checks: dotted name of the checks module.
        source: the solved MyST source (``tp1.md``).
        solution: its paired notebook (``tp1.ipynb``), the solved notebook.
        student: the generated student notebook.
        page: the generated book page, or ``None``.
        assets: files copied next to each submission when grading.
        pythonpath: folders put on the import path of every process that grades.
        timeout: seconds for a whole submission.
        cell_timeout: seconds for one cell.
        test_timeout: seconds for one test of the student's code.
    """

    folder: Path
    key: str
    checks: str
    source: Path
    solution: Path
    student: Path
    page: Path | None
    assets: list[Path] = field(default_factory=list)
    pythonpath: list[Path] = field(default_factory=list)
    timeout: float = 900.0
    cell_timeout: float = 300.0
    test_timeout: float = 30.0


def _repository_root(folder: Path) -> Path:
    for candidate in (folder, *folder.parents):
        if (candidate / "_config.yml").exists():
            return candidate
    return folder


def load_tp(folder: str | Path) -> TPConfig:
    """Read ``folder/tp.yml`` and fill in the defaults.

    Raises:
        FileNotFoundError: no ``tp.yml`` or a file it names is missing.
        ValueError: a field that isn't one of the known ones (a typo).
    """
    folder = Path(folder).resolve()
    manifest = folder / "tp.yml"
    if not manifest.exists():
        raise FileNotFoundError(f"{folder} has no tp.yml; a TP folder needs one (see vitcourse.grading.tpdir)")
    data = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    unknown = set(data) - KNOWN_FIELDS
    if unknown:
        raise ValueError(f"{manifest}: unknown fields {sorted(unknown)}; the fields are {sorted(KNOWN_FIELDS)}")
    key = data.get("key", folder.name)
    source = folder / data.get("source", f"{key}.md")
    if not source.exists():
        raise FileNotFoundError(f"{manifest} names the source {source.name}, which does not exist")
    root = _repository_root(folder)
    page = data.get("page", f"book/tps/{key}.md")
    assets = [folder / name for name in data.get("assets", [])]
    for asset in assets:
        if not asset.exists():
            raise FileNotFoundError(f"{manifest} lists the asset {asset.name}, which does not exist")
    return TPConfig(
        folder=folder,
        key=key,
        checks=data.get("checks", f"vitcourse.grading.{key}"),
        source=source,
        solution=source.with_suffix(".ipynb"),
        student=folder / data.get("student", f"{key}_alumno.ipynb"),
        page=(root / page) if page else None,
        assets=assets,
        pythonpath=[(folder / p).resolve() for p in data.get("pythonpath", [])],
        timeout=float(data.get("timeout", 900)),
        cell_timeout=float(data.get("cell_timeout", 300)),
        test_timeout=float(data.get("test_timeout", 30)),
    )
