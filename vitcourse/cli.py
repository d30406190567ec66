"""The ``vitcourse`` command line.

``vitcourse version`` prints the package version; ``vitcourse grade`` grades the
submissions of a TP (see :mod:`vitcourse.grading.grader`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitcourse", description="Tools of the CEIA-ViT course companion.")
    parser.add_argument("--version", action="version", version=f"vitcourse {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the package version")
    grade = commands.add_parser(
        "grade",
        help="grade the submitted notebooks of a TP",
        description="Run every submission in a fresh kernel, test its definitions in a separate process, "
        "and write one CSV row and one feedback file (Markdown, Spanish) per student.",
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
    return parser


def _grade(args: argparse.Namespace) -> int:
    from .grading.grader import GradeOptions, grade

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
    )
    results = grade(args.tp, args.submissions, args.out, options, log=lambda line: print(line, flush=True))
    counts = {
        status: sum(r.status == status for r in results) for status in ("ok", "partial", "error", "timeout", "invalid")
    }
    print(f"wrote {args.out} ({len(results)} rows: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ")")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "grade":
        return _grade(args)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
