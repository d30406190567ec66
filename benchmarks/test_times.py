"""Where `make test` spends its time: each stage, each book page, each TP, the slowest unit tests.

Reads what the last run left in ``_build/test/times`` (``make test`` writes it; each
stage's target alone writes its own part):

* ``stages.tsv``: stage name and milliseconds, one line per stage of ``make test``;
* ``pages.json``: every book page, executed this run or taken from the cache, and its
  seconds (:mod:`vitcourse.bookexec`), with how many pages ran at a time;
* ``unit.xml``, ``notebooks.xml``, ``exercises-<tp>.xml``: pytest's JUnit reports (per
  test file, per notebook under nbval);
* ``_build/test/exercises/<tp>/notas.csv``: the grader's seconds for each TP's solution
  and student notebook.

``python benchmarks/test_times.py`` prints the tables; ``--markdown`` prints the rows
of the README's *Measured* table; ``--stages-only`` just the stages (the end of
``make test``). The budget, as a benchmark and never as a test: ``make test`` at most
20 minutes on a fresh clone of the 2-core machine, each page at most 60 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_TEST_S = 20 * 60
BUDGET_PAGE_S = 60


def stages(folder: Path) -> list[tuple[str, float]]:
    path = folder / "stages.tsv"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, millis = line.partition("\t")
        if millis.strip().isdigit():
            rows.append((name, int(millis) / 1000))
    return rows


def pages(folder: Path) -> dict:
    path = folder / "pages.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def junit(path: Path) -> dict[str, float]:
    """Seconds per file (for nbval, per notebook) in a pytest JUnit report."""
    if not path.exists():
        return {}
    per_file: dict[str, float] = defaultdict(float)
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("file") or case.get("classname", "") or "?"
        if not name.endswith(".ipynb"):  # nbval's class names are file names, dots and all
            name = name.replace(".", "/")
        per_file[name] += float(case.get("time", 0))
    return dict(per_file)


def junit_total(path: Path) -> tuple[int, float]:
    if not path.exists():
        return 0, 0.0
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return sum(int(s.get("tests", 0)) for s in suites), sum(float(s.get("time", 0)) for s in suites)


def graded(exercises: Path) -> dict[str, dict[str, float]]:
    """``{tp: {"solucion": s, "alumno": s}}`` from each TP's grades."""
    found = {}
    for table in sorted(exercises.glob("*/notas.csv")):
        with table.open(encoding="utf-8") as stream:
            found[table.parent.name] = {row["student"]: float(row["seconds"]) for row in csv.DictReader(stream)}
    return found


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s ({seconds / 60:.1f} min)"


def report(folder: Path, exercises: Path, stages_only: bool = False) -> list[str]:
    lines = []
    rows = stages(folder)
    if rows:
        total = sum(seconds for _, seconds in rows)
        lines.append("stage            seconds")
        lines += [f"  {name:<14} {seconds:7.1f}" for name, seconds in rows]
        verdict = "within" if total <= BUDGET_TEST_S else "OVER"
        lines.append(f"  {'make test':<14} {total:7.1f}  = {_minutes(total)}, {verdict} the 20-min budget")
    else:
        lines.append(f"no stage times in {folder} (run `make test`)")
    if stages_only:
        return lines
    book = pages(folder)
    if book:
        lines.append("")
        lines.append(f"book pages ({book.get('jobs')} at a time, {book.get('wall_seconds', 0):.1f} s of execution)")
        for page in book.get("pages", []):
            seconds = page.get("seconds")
            shown = "   -  " if seconds is None else f"{seconds:6.1f}"
            how = "executed" if page.get("executed") else "cached  "
            over = "  OVER 60 s" if seconds and seconds > BUDGET_PAGE_S else ""
            lines.append(f"  {shown}  {how}  {page['page']}{over}")
        executed = [p["seconds"] for p in book.get("pages", []) if p.get("executed")]
        if executed and book.get("wall_seconds"):
            lines.append(
                f"  sum of executed pages {sum(executed):.1f} s / wall {book['wall_seconds']:.1f} s"
                f" = {sum(executed) / book['wall_seconds']:.2f}x from running {book.get('jobs')} at a time"
            )
    grades = graded(exercises)
    # verify writes one report per TP's re-run: exercises-<tp>.xml
    nbval = {
        report.stem.removeprefix("exercises-"): junit_total(report)[1] for report in folder.glob("exercises-*.xml")
    }
    if grades or nbval:
        lines.append("")
        lines.append("TPs (seconds)         graded solution  graded student  nbval re-run")
        for tp, seconds in grades.items():
            rerun = nbval.get(tp)
            shown = "-" if rerun is None else f"{rerun:.1f}"
            lines.append(f"  {tp:<20} {seconds.get('solucion', 0):15.1f} {seconds.get('alumno', 0):15.1f} {shown:>13}")
    compared = junit(folder / "notebooks.xml")
    if compared:
        lines.append("")
        lines.append("pages run again to compare outputs (nbval)")
        lines += [f"  {seconds:6.1f}  {name}" for name, seconds in sorted(compared.items())]
    unit = junit(folder / "unit.xml")
    if unit:
        count, seconds = junit_total(folder / "unit.xml")
        lines.append("")
        lines.append(f"unit tests: {count} in {seconds:.1f} s; slowest files")
        for name, spent in sorted(unit.items(), key=lambda item: -item[1])[:10]:
            lines.append(f"  {spent:6.1f}  {name}")
    return lines


def markdown(folder: Path, exercises: Path) -> list[str]:
    """Rows of the README's Measured table."""
    rows = ["| what | seconds |", "|---|---|"]
    total = 0.0
    for name, seconds in stages(folder):
        rows.append(f"| `make test`: {name} | {seconds:.0f} |")
        total += seconds
    if total:
        rows.append(f"| `make test`, all stages | {total:.0f} ({total / 60:.1f} min) |")
    book = pages(folder)
    for page in book.get("pages", []):
        if page.get("seconds") is not None:
            rows.append(
                f"| page `{page['page']}` ({'executed' if page.get('executed') else 'cached'}) | {page['seconds']:.0f} |"
            )
    for tp, seconds in graded(exercises).items():
        rows.append(
            f"| {tp}: solution graded / student notebook graded | {seconds.get('solucion', 0):.0f} / "
            f"{seconds.get('alumno', 0):.0f} |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--times", type=Path, default=ROOT / "_build" / "test" / "times", help="the run's times")
    parser.add_argument("--exercises", type=Path, default=ROOT / "_build" / "test" / "exercises")
    parser.add_argument("--markdown", action="store_true", help="the README's Measured rows")
    parser.add_argument("--stages-only", action="store_true", help="only the stages")
    args = parser.parse_args(argv)
    lines = (
        markdown(args.times, args.exercises) if args.markdown else report(args.times, args.exercises, args.stages_only)
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
