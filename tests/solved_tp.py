"""A TP's solution, read from its solved source as code, for testing the TP's checks.

The checks must pass on the solution and fail, saying why, on a known bug injected into
it by replacing one line (:meth:`SolvedTP.with_bug`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vitcourse.grading.build import read_source, student_notebook
from vitcourse.grading.tpdir import load_tp

EXERCISES = Path(__file__).resolve().parents[1] / "exercises"


class SolvedTP:
    """The code of a TP's ``solution`` cells and a way to run it.

    Args:
        name: the TP's folder under ``exercises/`` (``"tp2"``).
        prelude: imports the solution cells take from the notebook's earlier cells.
        keep: which solution cells make up :attr:`code` (default: all of them).
    """

    def __init__(self, name: str, prelude: str, keep: Callable[[str], bool] = lambda source: True) -> None:
        self.tp = load_tp(EXERCISES / name)
        self.cells = [
            cell.source
            for cell in read_source(self.tp).cells
            if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", [])
        ]
        self.code = "\n\n".join(source for source in self.cells if keep(source))
        self.prelude = prelude
        self.keep = keep

    def namespace(self, code: str | None = None) -> dict:
        """The names ``code`` (by default the solution) defines, run after the prelude."""
        namespace = {}
        exec(self.prelude + (self.code if code is None else code), namespace)  # noqa: S102
        return namespace

    def student_namespace(self) -> dict:
        """The names the student notebook's stubs define (the cells :attr:`code` is made of,
        as the student receives them), run after the prelude."""
        student = student_notebook(read_source(self.tp), self.tp)
        code = "\n\n".join(
            cell.source
            for cell in student.cells
            if "solution" in cell.metadata.get("tags", []) and self.keep(cell.source)
        )
        return self.namespace(code)

    def with_bug(self, old: str, new: str) -> dict:
        """The solution's definitions with one line replaced (the line must be there)."""
        assert old in self.code, f"the solution no longer has {old!r}: update this test"
        return self.namespace(self.code.replace(old, new))


def by_test(result) -> dict:
    """A check's verdicts by test name (the part of ``test_id`` after the key)."""
    return {t.test_id.split("/")[1]: t for t in result.tests}
