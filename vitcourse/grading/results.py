"""Verdicts: the result of each test and each part, and how they are shown.

The same objects serve the student (``check(...)`` in a notebook: HTML in Jupyter and
Colab, plain text elsewhere) and the instructor (the feedback file of each student).
A notebook output also carries a JSON copy of the verdicts under
:data:`MIME_TYPE`, so the test suite can read them back from an executed notebook.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field

__all__ = ["MIME_TYPE", "STATUS_TEXT", "PartResult", "TestResult"]

MIME_TYPE = "application/vnd.vitcourse.check+json"

# status -> (icon, Spanish text, colour)
STATUS_TEXT = {
    "pass": ("✔", "correcto", "#1a7f37"),
    "fail": ("✘", "incorrecto", "#cf222e"),
    "error": ("✘", "tu código lanzó un error", "#cf222e"),
    "pending": ("…", "todavía no implementado", "#9a6700"),
    "missing": ("✘", "no está definido en el notebook", "#cf222e"),
    "imported": ("✘", "no cuenta: usa la implementación de referencia", "#cf222e"),
    "timeout": ("⏱", "superó el tiempo límite", "#cf222e"),
}


@dataclass
class TestResult:
    """The verdict of one test.

    Attributes:
        test_id: ``"tp1.learned_pos/forward_values"``.
        title: what the test verifies (Spanish).
        weight: its share of the part's points.
        status: a key of :data:`STATUS_TEXT`.
        expected, got: what was expected and what came (empty when it passed).
        hint: what to look at (shown when it did not pass).
        private: an instructor's private test.
    """

    test_id: str
    title: str
    weight: float
    status: str
    expected: str = ""
    got: str = ""
    hint: str = ""
    private: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def lines(self) -> list[str]:
        """Plain-text lines: the verdict, then expected/got/hint when it did not pass."""
        icon, text, _ = STATUS_TEXT[self.status]
        private = " (test privado)" if self.private else ""
        head = f"{icon} {self.title}{private}"
        if self.passed:
            return [head]
        lines = [f"{head}: {text}"]
        if self.expected:
            lines.append(f"    se esperaba: {self.expected}")
        if self.got:
            lines.append(f"    llegó:       {self.got}")
        if self.hint and self.status in ("fail", "error"):
            lines.append(f"    pista:       {self.hint}")
        return lines


@dataclass
class PartResult:
    """The verdicts of one part and the points they earn.

    Attributes:
        key: ``"tp1.learned_pos"``.
        title: the part's title.
        points: the part's points.
        tests: one :class:`TestResult` per test.
        note: a sentence shown under the header (e.g. why nothing could be graded).
    """

    key: str
    title: str
    points: float
    tests: list[TestResult] = field(default_factory=list)
    note: str = ""

    @property
    def score(self) -> float:
        """Points earned: the part's points times the passed share of the test weights."""
        total = sum(t.weight for t in self.tests)
        if not total:
            return 0.0
        return round(self.points * sum(t.weight for t in self.tests if t.passed) / total, 2)

    @property
    def status(self) -> str:
        """``"pass"`` when every test passed, ``"pending"`` when none is implemented, else ``"fail"``."""
        if self.tests and all(t.passed for t in self.tests):
            return "pass"
        if self.tests and all(t.status == "pending" for t in self.tests):
            return "pending"
        return "fail"

    def header(self) -> str:
        return f"{self.key} · {self.title}: {_points(self.score)} / {_points(self.points)} {_unit(self.points)}"

    def to_text(self) -> str:
        """The verdict as plain text, one line per test."""
        lines = [self.header()]
        if self.note:
            lines.append(f"  {self.note}")
        lines += ["  " + line for test in self.tests for line in test.lines()]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The verdict as Markdown (the feedback files)."""
        lines = [f"### {self.header()}", ""]
        if self.note:
            lines += [self.note, ""]
        for test in self.tests:
            icon, text, _ = STATUS_TEXT[test.status]
            private = " *(test privado)*" if test.private else ""
            if test.passed:
                lines.append(f"- {icon} {_md(test.title)}{private}")
                continue
            lines.append(f"- {icon} **{_md(test.title)}**{private}: {text}.")
            if test.expected:
                lines.append(f"  - se esperaba: `{_code(test.expected)}`")
            if test.got:
                lines.append(f"  - llegó: `{_code(test.got)}`")
            if test.hint and test.status in ("fail", "error"):
                lines.append(f"  - pista: {_md(test.hint)}")
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """The verdict as a small self-contained HTML block (inline styles, for Colab)."""
        colour = STATUS_TEXT[self.status][2]
        rows = []
        for test in self.tests:
            icon, text, test_colour = STATUS_TEXT[test.status]
            detail = "" if test.passed else f"<div style='color:{test_colour}'>{html.escape(text)}</div>"
            for label, value in (("se esperaba", test.expected), ("llegó", test.got)):
                if value and not test.passed:
                    detail += f"<div><b>{label}:</b> <code>{html.escape(value)}</code></div>"
            if test.hint and test.status in ("fail", "error"):
                detail += f"<div><i>Pista: {html.escape(test.hint)}</i></div>"
            private = " <small>(test privado)</small>" if test.private else ""
            rows.append(
                f"<tr><td style='color:{test_colour};font-size:1.2em;vertical-align:top;padding:2px 8px'>{icon}</td>"
                f"<td style='text-align:left;padding:2px 8px'>{html.escape(test.title)}{private}{detail}</td></tr>"
            )
        note = f"<div style='margin:4px 0'>{html.escape(self.note)}</div>" if self.note else ""
        return (
            f"<div style='border-left:4px solid {colour};padding:4px 10px;margin:6px 0'>"
            f"<div style='font-weight:bold'>{html.escape(self.key)} · {html.escape(self.title)}: "
            f"{_points(self.score)} / {_points(self.points)} {_unit(self.points)}</div>{note}"
            f"<table style='border-collapse:collapse;margin-top:4px'>{''.join(rows)}</table></div>"
        )

    def to_json(self) -> dict:
        """A JSON-ready copy (no floats that vary between runs)."""
        return {
            "key": self.key,
            "title": self.title,
            "points": self.points,
            "score": self.score,
            "note": self.note,
            "tests": [asdict(test) for test in self.tests],
        }

    # Jupyter display: HTML in notebooks, text in a console, JSON for the tests.
    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.to_text(), "text/html": self.to_html(), MIME_TYPE: self.to_json()}

    def __str__(self) -> str:
        return self.to_text()


def _points(value: float) -> str:
    return f"{value:g}"


def _unit(points: float) -> str:
    return "punto" if points == 1 else "puntos"


def _md(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


def _code(text: str) -> str:
    return text.replace("\n", " ").replace("`", "'")
