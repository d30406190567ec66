"""The ``vitcourse`` command line.

``vitcourse version`` prints the package version; ``vitcourse grade`` grades the
submissions of a TP (see :mod:`vitcourse.grading.grader`); ``vitcourse new-project``
starts a course project from the packaged template (see
:mod:`vitcourse.course.newproject`); ``vitcourse sweep`` runs a parameter sweep of a
notebook with papermill (see :mod:`vitcourse.sweep`)::

    vitcourse sweep point.ipynb --grid PATCH_SIZE=8,16,32 --grid EMBED_DIM=8,64 \\
        --out _build/sweep -p PROFILE=smoke --workers 2
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__

__all__ = ["main"]


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. PATCH_SIZE=16), got {text!r}")
    return name.strip(), value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitcourse", description="Tools of the CEIA-ViT course companion.")
    parser.add_argument("--version", action="version", version=f"vitcourse {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the package version")
    sweep = commands.add_parser(
        "sweep",
        help="run a notebook once per point of a parameter grid (papermill) and print the table",
        description=(
            "Run NOTEBOOK once per combination of the --grid values with papermill; each run writes its "
            "results to RESULT_PATH. The executed notebooks, the records and results.csv go to --out. "
            "Values are read as int, float, true/false, none or else strings."
        ),
    )
    sweep.add_argument("notebook", help="the point notebook (.ipynb) with a 'parameters' cell defining RESULT_PATH")
    sweep.add_argument(
        "--grid",
        action="append",
        type=_assignment,
        required=True,
        metavar="NAME=V1,V2",
        help="a parameter and its comma-separated values (repeat for each parameter)",
    )
    sweep.add_argument("--out", required=True, help="output folder (e.g. under _build/)")
    sweep.add_argument(
        "-p",
        "--parameter",
        action="append",
        type=_assignment,
        default=[],
        metavar="NAME=VALUE",
        help="a fixed parameter given to every point (repeatable)",
    )
    sweep.add_argument("--workers", type=int, default=1, help="points run at once (default 1)")
    sweep.add_argument("--no-reuse", action="store_true", help="run every point again even if its record is current")
    sweep.add_argument("--timeout", type=int, default=None, help="seconds a cell may run before the point fails")
    sweep.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    grade = commands.add_parser(
        "grade",
        help="grade the submitted notebooks of a TP",
        description="Run every submission in a fresh, isolated kernel, test its definitions in separate "
        "isolated processes, and write one CSV row and one feedback file (Markdown, Spanish) per student.",
    )
    grade.add_argument("tp", type=Path, help="the TP's folder, e.g. exercises/tp1 (it has a tp.yml)")
    grade.add_argument("submissions", nargs="+", type=Path, help="submitted .ipynb files (or folders of them)")
    grade.add_argument("--out", type=Path, required=True, help="the CSV of grades to write, e.g. notas.csv")
    grade.add_argument("--timeout", type=float, help="seconds for a whole submission (default: the TP's tp.yml)")
    grade.add_argument("--cell-timeout", type=float, help="seconds for one cell or one test (default: tp.yml)")
    grade.add_argument(
        "--test-timeout", type=float, help="seconds for one test of a definition (default: cell timeout)"
    )
    grade.add_argument("--private-tests", type=Path, help="folder of .py files with private tests")
    grade.add_argument("--workers", type=int, default=1, help="submissions graded in parallel (default 1)")
    grade.add_argument("--feedback", type=Path, help="folder for the feedback files (default: OUT_devoluciones/)")
    limits = grade.add_argument_group(
        "isolation",
        "Each submission runs with no network, reading only the Python environment and the package, writing "
        "only its own temporary folder, under these limits (bubblewrap; see vitcourse.grading.isolation).",
    )
    limits.add_argument("--memory-mb", type=int, default=6144, help="memory per process, MiB (default 6144)")
    limits.add_argument("--max-processes", type=int, default=256, help="processes and threads (default 256)")
    limits.add_argument("--max-open-files", type=int, default=1024, help="open files per process (default 1024)")
    limits.add_argument("--max-file-mb", type=int, default=512, help="largest file written, MiB (default 512)")
    limits.add_argument(
        "--unsafe-no-isolation",
        action="store_true",
        help="where isolation is not available, run submissions unconfined (limits only): "
        "they can use the network and read and write your files",
    )
    _add_new_project(commands)
    return parser


def _add_new_project(commands: argparse._SubParsersAction) -> None:
    new = commands.add_parser(
        "new-project",
        help="start a course project from the template (Cookiecutter Data Science layout)",
        description="Create the folder NAME with a course project: YAML config, logging, MLflow, tests, "
        "Makefile (make data/train/evaluate/report/test), CI workflow, report and presentation outlines.",
    )
    new.add_argument("name", metavar="NAME", help="the project's folder (letters, digits, - and _)")
    new.add_argument("--model", default="vit", metavar="{vit,deit,swin,clip}", help="the model (default: vit)")
    new.add_argument(
        "--dataset", default="fashion_mnist", metavar="{fashion_mnist,mnist}", help="the images (default: fashion_mnist)"
    )
    new.add_argument("--no-mlflow", action="store_true", help="leave experiment tracking out")
    new.add_argument("-o", "--output-dir", type=Path, default=Path("."), help="where to create NAME (default: .)")
    new.add_argument("--authors", default="Integrantes del grupo", help="the group's names, for the README and report")
    new.add_argument("--force", action="store_true", help="render over an existing folder")
    # One line for any mistake (no usage block): the message says what to pass instead.
    new.error = lambda message: new.exit(2, f"vitcourse new-project: error: {message}\n")  # type: ignore[method-assign]


def _new_project(args: argparse.Namespace) -> int:
    from .course.newproject import NewProjectError, new_project

    try:
        path = new_project(
            args.name,
            args.output_dir,
            model=args.model,
            dataset=args.dataset,
            mlflow=not args.no_mlflow,
            authors=args.authors,
            overwrite=args.force,
        )
    except NewProjectError as error:
        print(f"vitcourse new-project: error: {error}", file=sys.stderr)
        return 2
    print(f"created {path}; next: cd {path} && pip install -r requirements.txt && make all PROFILE=smoke")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from .sweep import parse_value, run_sweep

    grid: dict[str, list] = {}
    for name, values in args.grid:
        if name in grid:
            raise ValueError(f"--grid {name}=... given twice; list all its values once: --grid {name}=V1,V2")
        grid[name] = [parse_value(value) for value in values.split(",")] if values.strip() else []
    parameters = {}
    for name, value in args.parameter:
        if name in parameters:
            raise ValueError(f"-p {name}=... given twice")
        parameters[name] = parse_value(value)
    table = run_sweep(
        args.notebook,
        grid,
        args.out,
        parameters=parameters,
        workers=args.workers,
        reuse=not args.no_reuse,
        timeout=args.timeout,
    )
    shown = table.drop(columns=["notebook"] + (["error"] if table["error"].isna().all() else []))
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_colwidth", 60):
        print(shown.to_string(index=False))
    failed = table[table["status"] != "ok"]
    print(f"\n{len(table)} points, {len(failed)} failed; table in {args.out}/results.csv", file=sys.stderr)
    for _, row in failed.iterrows():
        point = ", ".join(f"{name}={row[name]}" for name in grid)
        print(f"  failed: {point}: {row['error']} (see {args.out}/{row['notebook']})", file=sys.stderr)
    return 1 if len(failed) else 0


def _grade(args: argparse.Namespace) -> int:
    from .grading.grader import GradeOptions, IsolationUnavailable, grade
    from .grading.isolation import Limits

    missing = [str(p) for p in args.submissions if not p.exists()]
    if missing:
        print(f"vitcourse grade: these submissions do not exist: {', '.join(missing)}", file=sys.stderr)
        return 2
    options = GradeOptions(
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        test_timeout=args.test_timeout,
        private_tests=args.private_tests,
        workers=args.workers,
        feedback_dir=args.feedback,
        limits=Limits(
            memory_mb=args.memory_mb,
            processes=args.max_processes,
            open_files=args.max_open_files,
            file_mb=args.max_file_mb,
        ),
        unsafe_no_isolation=args.unsafe_no_isolation,
    )
    try:
        results = grade(args.tp, args.submissions, args.out, options, log=lambda line: print(line, flush=True))
    except IsolationUnavailable as error:
        print(f"vitcourse grade: {error}", file=sys.stderr)
        return 2
    counts = {
        status: sum(r.status == status for r in results) for status in ("ok", "partial", "error", "timeout", "invalid")
    }
    print(f"wrote {args.out} ({len(results)} rows: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ")")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "new-project":
        print(f"vitcourse new-project: error: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
        return 2
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "grade":
        return _grade(args)
    if args.command == "new-project":
        return _new_project(args)
    if args.command == "sweep":
        if not args.quiet:  # one line per point on stderr, while the sweep runs
            progress = logging.getLogger("vitcourse.sweep")
            progress.setLevel(logging.INFO)
            if not progress.handlers:
                progress.addHandler(logging.StreamHandler(sys.stderr))
        try:
            return _sweep(args)
        except (ValueError, FileNotFoundError) as error:
            parser.exit(2, f"vitcourse sweep: error: {error}\n")
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
