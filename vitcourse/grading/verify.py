"""Does a TP work end to end? What ``make test-exercises`` runs for every TP.

``python -m vitcourse.grading.verify exercises/tp1`` checks, in order:

1. the generated files are up to date (``python -m vitcourse.grading.build --check``);
2. the **solution** notebook, graded by the batch grader, runs without a single error,
   every ``check`` in it passes, and it gets every automatic point (status ``ok``);
3. the **student** notebook runs to the end: every ``check`` in it reports "todavía
   no implementado" for every test, the only cells that fail are the ones that use
   what the student has not written yet, and it is graded 0 with status ``partial``.

Every automatic part must be checked at least once in each notebook. The executed
notebooks, the CSV and the feedback files are left in ``--out`` for inspection, and the
solution as the grader executed it (``smoke`` profile injected) is also copied
to ``--out/<tp>.ipynb``: ``make test-exercises`` re-checks that copy with nbval rather
than executing the solution a second time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from .build import build
from .execute import EXPORT_TAG, added_by_the_run
from .grader import GradeOptions, grade
from .registry import load_checks
from .results import MIME_TYPE
from .submission import dependent_cells, unfinished_names
from .tpdir import load_tp

__all__ = ["check_outputs", "solution_problems", "student_problems", "verify"]


def check_outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    """The verdicts every ``check`` call left in an executed notebook (their JSON copies)."""
    return [
        output["data"][MIME_TYPE]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if MIME_TYPE in output.get("data", {})
    ]


def _errors(notebook: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """``(position from 1, "Name: value")`` of every failing cell, ignoring cells the grader added."""
    found, position = [], 0
    for cell in notebook.cells:
        if added_by_the_run(cell):
            continue
        position += 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append((position, f"{output.get('ename')}: {output.get('evalue')}"))
    return found


def verify(folder: str | Path, out: str | Path, workers: int = 2) -> list[str]:
    """Run the checks of the module docstring on one TP.

    Returns:
        Problems found (empty when the TP is in order).
    """
    tp = load_tp(folder)
    problems = [f"out of date: {name} (run `make tps`)" for name in build(tp.folder, check=True)]
    assignment = load_checks(tp.checks, tp.pythonpath)
    out = Path(out)
    submissions = out / "entregas"
    submissions.mkdir(parents=True, exist_ok=True)
    solution, student = submissions / "solucion.ipynb", submissions / "alumno.ipynb"
    solution.write_bytes(tp.solution.read_bytes())
    student.write_bytes(tp.student.read_bytes())
    results = {
        r.student: r
        for r in grade(
            tp.folder,
            [solution, student],
            out / "notas.csv",
            # The TP's own notebooks: their figures are kept whole for the nbval re-check.
            GradeOptions(workers=workers, max_output_bytes=256 * 2**20),
            log=lambda line: print(line, flush=True),
        )
    }
    feedback = out / "notas_devoluciones"
    problems += solution_problems(
        results["solucion"], nbformat.read(feedback / "solucion.ipynb", as_version=4), assignment
    )
    problems += student_problems(
        results["alumno"],
        nbformat.read(feedback / "alumno.ipynb", as_version=4),
        nbformat.read(tp.student, as_version=4),
        assignment,
    )
    graded = nbformat.read(feedback / "solucion.ipynb", as_version=4)
    graded.cells = [cell for cell in graded.cells if EXPORT_TAG not in cell.metadata.get("tags", [])]
    nbformat.write(graded, out.parent / f"{out.name}.ipynb")  # as the grader ran it, without its export cell
    return problems


def _unchecked(verdicts: list[dict], assignment) -> list[str]:
    keys = {part.key for part in assignment.auto_parts}
    return sorted(keys - {v["key"] for v in verdicts})


def solution_problems(result, executed: nbformat.NotebookNode, assignment) -> list[str]:
    """What is wrong with a graded, executed solution notebook (see the module docstring)."""
    problems = []
    max_auto = sum(p.points for p in assignment.auto_parts)
    if result.status != "ok" or result.total != max_auto:
        problems.append(f"solution: graded {result.total:g}/{max_auto:g} with status {result.status} ({result.detail})")
    problems += [f"solution: cell {cell} failed: {error}" for cell, error in _errors(executed)]
    verdicts = check_outputs(executed)
    problems += [f"solution: no cell calls check({key!r}, ...)" for key in _unchecked(verdicts, assignment)]
    for verdict in verdicts:
        failed = [t["test_id"] for t in verdict["tests"] if t["status"] != "pass"]
        if failed:
            problems.append(f"solution: check({verdict['key']!r}) does not pass: {failed}")
    return problems


def student_problems(result, executed: nbformat.NotebookNode, student: nbformat.NotebookNode, assignment) -> list[str]:
    """What is wrong with a graded, executed, untouched student notebook."""
    problems = []
    if result.status != "partial" or result.total != 0:
        problems.append(f"student: graded {result.total:g} with status {result.status} ({result.detail})")
    allowed = dependent_cells(student, unfinished_names(student))
    problems += [
        f"student: cell {cell} failed and does not depend on unwritten code: {error}"
        for cell, error in _errors(executed)
        if cell not in allowed
    ]
    verdicts = check_outputs(executed)
    problems += [
        f"student: no check({key!r}, ...) reported (did its cell crash?)" for key in _unchecked(verdicts, assignment)
    ]
    for verdict in verdicts:
        wrong = [t["test_id"] for t in verdict["tests"] if t["status"] != "pending"]
        if wrong or not verdict["tests"]:
            problems.append(f"student: check({verdict['key']!r}) should say 'todavía no implementado', got {wrong}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitcourse.grading.verify", description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="TP folders (each with a tp.yml)")
    parser.add_argument("--out", type=Path, default=Path("_build/test/exercises"), help="where results go")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    failed = False
    for folder in args.folders:
        problems = verify(folder, args.out / folder.resolve().name, args.workers)
        for problem in problems:
            print(f"{folder}: {problem}", file=sys.stderr)
        print(f"{folder}: {'FAILED' if problems else 'ok'}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
