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
solution as the grader executed it (``smoke`` profile injected) is also copied to
``--out/<tp>.ipynb``. With ``--nbval SANITIZE_CFG`` (``make test-exercises``) that copy
is run once more under ``pytest --nbval``, which compares every output with the
grader's: the solution runs twice, the student notebook once. All of it runs
``--workers`` notebooks at a time, the solutions first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
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


def _grade_one(tp, which: str, source: Path, out: Path) -> object:
    """Grade one of a TP's own notebooks (``which``: ``solucion`` or ``alumno``) in ``out``."""
    submissions = out / "entregas"
    submissions.mkdir(parents=True, exist_ok=True)
    path = submissions / f"{which}.ipynb"
    path.write_bytes(source.read_bytes())
    (result,) = grade(
        tp.folder,
        [path],
        out / f"notas_{which}.csv",
        # The TP's own notebooks: their figures are kept whole for the nbval re-check.
        GradeOptions(workers=1, max_output_bytes=256 * 2**20, feedback_dir=out / "notas_devoluciones"),
        log=lambda line: print(f"{tp.key}: {line}", flush=True),
    )
    return result


def _graded_copy(out: Path) -> Path:
    """The solution as the grader ran it, without its export cell: what nbval re-runs."""
    graded = nbformat.read(out / "notas_devoluciones" / "solucion.ipynb", as_version=4)
    graded.cells = [cell for cell in graded.cells if EXPORT_TAG not in cell.metadata.get("tags", [])]
    copy = out.parent / f"{out.name}.ipynb"
    nbformat.write(graded, copy)
    return copy


def _nbval(notebook: Path, sanitize: Path, junit: Path | None, threads: int) -> list[str]:
    """Run ``notebook`` again under ``pytest --nbval``, comparing with the outputs it holds."""
    command = [sys.executable, "-m", "pytest", "-q", "--nbval", "-p", "no:cacheprovider"]
    command += ["--nbval-sanitize-with", str(sanitize), "--nbval-cell-timeout", "600"]
    if junit is not None:
        command.append(f"--junitxml={junit / f'exercises-{notebook.stem}.xml'}")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    done = subprocess.run([*command, str(notebook)], capture_output=True, text=True, env=env, check=False)
    print(f"{notebook.stem}: nbval re-run of the graded solution: {done.stdout.strip().splitlines()[-1:]}")
    if done.returncode:
        return [f"nbval: the graded solution does not re-run the same:\n{done.stdout[-6000:]}{done.stderr[-2000:]}"]
    return []


def verify_all(
    folders: list[str | Path],
    out: str | Path,
    workers: int = 2,
    sanitize: Path | None = None,
    junit: Path | None = None,
) -> dict[Path, list[str]]:
    """Run the checks of the module docstring on several TPs, ``workers`` notebooks at a time.

    Every TP's solution and student notebook are graded as separate jobs of one pool, the
    solutions first (the longest); with ``sanitize`` (nbval's sanitizer file), each graded
    solution is re-run under ``pytest --nbval`` as soon as it is graded, in the same pool,
    with JUnit reports in ``junit``. No notebook runs more than that.

    Returns:
        Problems per TP folder (empty lists when in order).
    """
    out = Path(out)
    tps = [load_tp(folder) for folder in folders]
    problems = {
        tp.folder: [f"out of date: {name} (run `make tps`)" for name in build(tp.folder, check=True)] for tp in tps
    }
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))  # the kernels' too: one core each, none idle
    queue = [("grade", tp, "solucion") for tp in tps] + [("grade", tp, "alumno") for tp in tps]
    results: dict[tuple[Path, str], object] = {}
    running: dict = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while queue or running:
            while queue and len(running) < max(1, workers):
                kind, tp, which = queue.pop(0)
                folder = out / tp.folder.name
                if kind == "grade":
                    source = tp.solution if which == "solucion" else tp.student
                    future = pool.submit(_grade_one, tp, which, source, folder)
                else:
                    future = pool.submit(_nbval, _graded_copy(folder), sanitize, junit, threads)
                running[future] = (kind, tp, which)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                kind, tp, which = running.pop(future)
                if kind == "nbval":
                    problems[tp.folder] += future.result()
                    continue
                results[tp.folder, which] = future.result()
                if which == "solucion" and sanitize is not None:
                    queue.insert(0, ("nbval", tp, which))  # as long as a solution: before the students
    for tp in tps:
        folder = out / tp.folder.name
        _merge_grades(folder)
        feedback = folder / "notas_devoluciones"
        assignment = load_checks(tp.checks, tp.pythonpath)
        problems[tp.folder] += solution_problems(
            results[tp.folder, "solucion"], nbformat.read(feedback / "solucion.ipynb", as_version=4), assignment
        )
        problems[tp.folder] += student_problems(
            results[tp.folder, "alumno"],
            nbformat.read(feedback / "alumno.ipynb", as_version=4),
            nbformat.read(tp.student, as_version=4),
            assignment,
        )
        if sanitize is None:
            _graded_copy(folder)
    return problems


def _merge_grades(folder: Path) -> None:
    """One ``notas.csv`` per TP, the solution's row and the student notebook's."""
    rows = []
    for which in ("alumno", "solucion"):
        lines = (folder / f"notas_{which}.csv").read_text(encoding="utf-8").splitlines(keepends=True)
        rows += lines if not rows else lines[1:]
    (folder / "notas.csv").write_text("".join(rows), encoding="utf-8")


def verify(folder: str | Path, out: str | Path, workers: int = 2) -> list[str]:
    """Run the checks of the module docstring on one TP, in ``out`` (a folder per TP inside it).

    Returns:
        Problems found (empty when the TP is in order).
    """
    tp = load_tp(folder)
    return verify_all([folder], Path(out), workers)[tp.folder]


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
    parser.add_argument("--workers", type=int, default=2, help="notebooks at a time (default 2)")
    parser.add_argument("--nbval", type=Path, metavar="SANITIZE_CFG", help="re-run each graded solution under nbval")
    parser.add_argument("--junit", type=Path, help="folder for the nbval re-runs' JUnit reports")
    args = parser.parse_args(argv)
    problems = verify_all(args.folders, args.out, args.workers, args.nbval, args.junit)
    failed = False
    for folder in args.folders:
        found = problems[folder.resolve()]
        for problem in found:
            print(f"{folder}: {problem}", file=sys.stderr)
        print(f"{folder}: {'FAILED' if found else 'ok'}")
        failed |= bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
