"""The ``vitcourse`` command line.

``vitcourse version`` prints the package version; ``vitcourse sweep`` runs a
parameter sweep of a notebook with papermill (see :mod:`vitcourse.sweep`).
"""

from __future__ import annotations

import argparse
import sys

from . import __version__

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitcourse", description="Tools of the CEIA-ViT course companion.")
    parser.add_argument("--version", action="version", version=f"vitcourse {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the package version")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
