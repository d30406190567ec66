"""Look for solutions where students can read them: the built book, its sources, the student notebooks.

``python -m vitcourse.grading.leaks _build/html exercises/tp1`` collects the lines only
the TP's solution has (:func:`vitcourse.grading.build.solution_only_strings`) and
searches every file under the given folder for them: HTML as the text a reader sees
(tags stripped, entities decoded, so syntax highlighting can't hide a line), notebooks
as the text of their cells and outputs, anything else as text. Lines that also appear
in the ``vitcourse`` package are left out: the package is public (students install it),
so a reference implementation that a chapter shows on purpose is not a leak.

``make test-book`` runs it after building the book.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from pathlib import Path

from .build import read_source, solution_only_strings
from .tpdir import load_tp

__all__ = ["find_leaks", "public_package_text", "secrets_of", "visible_text"]

TAG = re.compile(r"<[^>]+>")
SKIP_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".woff", ".woff2", ".ttf", ".eot", ".ico", ".pdf", ".pickle"}


def _flat(text: str) -> str:
    return " ".join(text.split())


def visible_text(path: Path) -> str:
    """What a reader of ``path`` sees, whitespace collapsed."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix in (".html", ".htm"):
        raw = html.unescape(TAG.sub("", raw))
    elif path.suffix == ".ipynb":
        try:
            notebook = json.loads(raw)
            parts = []
            for cell in notebook.get("cells", []):
                parts.append("".join(cell.get("source", [])))
                for output in cell.get("outputs", []):
                    parts.append("".join(output.get("text", [])))
                    parts += ["".join(v) if isinstance(v, list) else str(v) for v in output.get("data", {}).values()]
            raw = "\n".join(parts)
        except (json.JSONDecodeError, AttributeError):
            pass
    return _flat(raw)


def public_package_text(package: Path | None = None) -> str:
    """Every line of the installed ``vitcourse`` sources, for excluding public code."""
    package = package or Path(__file__).resolve().parents[1]
    return _flat("\n".join(p.read_text(encoding="utf-8") for p in sorted(package.rglob("*.py"))))


def secrets_of(folders: list[Path]) -> dict[str, list[str]]:
    """``{tp key: solution-only lines}``, without the lines the public package also has."""
    public = public_package_text()
    secrets = {}
    for folder in folders:
        tp = load_tp(folder)
        secrets[tp.key] = [line for line in solution_only_strings(read_source(tp)) if line not in public]
    return secrets


def find_leaks(root: Path, secrets: dict[str, list[str]]) -> list[tuple[Path, str, str]]:
    """``(file, tp key, line)`` for every solution-only line found under ``root``."""
    found = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file() and p.suffix.lower() not in SKIP_SUFFIXES):
        text = visible_text(path)
        for key, lines in secrets.items():
            found += [(path, key, line) for line in lines if line in text]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitcourse.grading.leaks", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="folder to search, e.g. _build/html")
    parser.add_argument("tps", nargs="+", type=Path, help="TP folders whose solutions must not appear")
    args = parser.parse_args(argv)
    secrets = secrets_of(args.tps)
    empty = [key for key, lines in secrets.items() if not lines]
    if empty:
        print(f"no solution-only lines to look for in {empty}: the check would prove nothing", file=sys.stderr)
        return 1
    leaks = find_leaks(args.root, secrets)
    for path, key, line in leaks:
        print(f"{path}: {key} solution line: {line}", file=sys.stderr)
    total = sum(len(lines) for lines in secrets.values())
    print(f"searched {args.root} for {total} solution-only lines of {', '.join(secrets)}: {len(leaks)} found")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
