"""Running a test: observe an implementation, observe the reference, judge.

The three steps are separate functions because they don't always run in the same
process. In a student's notebook, ``check(...)`` runs all three in the kernel. When an
instructor grades, :func:`observe` runs in a sandbox process that holds the student's
code, and :func:`reference_observation` and :func:`judge` run in the grader, where the
student's code never ran (so it cannot have patched ``torch`` or the checks).
"""

from __future__ import annotations

import inspect
import traceback
from pathlib import Path
from typing import Any

from .compare import compare
from .probes import seeded, to_wire
from .registry import Definition, Part, Test, Variable, get_part
from .results import PartResult, TestResult

__all__ = ["check", "evaluate", "judge", "observe", "reference_observation"]

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
MAX_MESSAGE = 400


def _where(error: BaseException, checks_file: str) -> str:
    """The line of the student's code the error came from (the last frame outside libraries and checks)."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        name = frame.filename
        if name == checks_file or name.startswith(_PACKAGE_DIR) or "site-packages" in name or "/lib/python" in name:
            continue
        cell = name.strip("<>") if name.startswith("<celda") else "tu código"
        return f"{cell}, línea {frame.lineno}"
    return ""


def _is_placeholder(value: Any) -> bool:
    """``...``: what the student notebook assigns where the student must compute a value."""
    return value is Ellipsis or (isinstance(value, dict) and value.get("__type__") == "ellipsis")


def _wrong_kind(part: Part | None, implementation: Any) -> str:
    """Why ``implementation`` can't be what the part asks for (a class given as an instance, ...), or ``""``."""
    if part is None or not isinstance(part.target, Definition):
        return ""
    name = part.target.name
    if inspect.isclass(part.reference) and not inspect.isclass(implementation):
        return (
            f"se esperaba la clase {name} (sin crear un objeto: sin paréntesis); llegó {type(implementation).__name__}"
        )
    if callable(part.reference) and not callable(implementation):
        return f"se esperaba la función {name}; llegó {type(implementation).__name__}"
    return ""


def observe(test: Test, implementation: Any, part: Part | None = None) -> dict:
    """Run ``test``'s probe on ``implementation`` with the test's seed.

    Args:
        test: the test.
        implementation: the student's (or the reference's) function, class or value.
        part: the test's part, to say so plainly when a class was expected and an
            object came (or a function and something else).

    Returns:
        An *outcome*, plain data: ``{"status": "ok", "obs": ...}``, ``{"status": "pending"}``
        when the code raised ``NotImplementedError``, or ``{"status": "error", "type": ...,
        "message": ..., "where": ...}``.
    """
    if _is_placeholder(implementation):
        return {"status": "pending"}
    wrong = _wrong_kind(part, implementation)
    if wrong:
        return {"status": "error", "type": "TipoIncorrecto", "message": wrong, "where": ""}
    try:
        with seeded(test.seed):
            return {"status": "ok", "obs": to_wire(test.probe(implementation))}
    except NotImplementedError:
        return {"status": "pending"}
    except Exception as error:  # noqa: BLE001 (the student's code may raise anything; it is the verdict)
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return {
            "status": "error",
            "type": type(error).__name__,
            "message": message[:MAX_MESSAGE],
            "where": _where(error, test.probe.__code__.co_filename),
        }


def reference_observation(test: Test, part: Part) -> Any:
    """What the probe observes on the reference; a failure here is a bug in the checks."""
    implementation = to_wire(part.reference()) if isinstance(part.target, Variable) else part.reference
    outcome = observe(test, implementation, part)
    if outcome["status"] != "ok":
        raise RuntimeError(f"the reference fails its own test {test.id}: {outcome}")
    return outcome["obs"]


def judge(test: Test, outcome: dict, expected: Any) -> TestResult:
    """Turn an outcome (see :func:`observe`) into a verdict against the reference's observation."""
    result = TestResult(test.id, test.title, test.weight, "pass", hint=test.hint, private=test.private)
    status = outcome.get("status")
    if status == "ok":
        if test.judge is not None:
            difference = test.judge(outcome["obs"], expected)
        else:
            difference = compare(outcome["obs"], expected, test.rtol, test.atol)
        if difference:
            result.status, (result.expected, result.got) = "fail", difference
    elif status == "error" and outcome.get("type") == "TipoIncorrecto":  # the wrong kind of thing was passed
        result.status, result.got, result.hint = "error", str(outcome.get("message", "")), ""
    elif status == "error":
        result.status = "error"
        result.got = f"{outcome.get('type', 'Exception')}: {outcome.get('message', '')}".rstrip(": ")
        if outcome.get("where"):
            result.got += f" ({outcome['where']})"
    elif status in ("pending", "missing", "imported", "timeout"):
        result.status = status
        result.got = str(outcome.get("message", ""))
    else:
        result.status, result.got = "error", f"resultado ilegible del proceso de corrección: {status!r}"
    return result


def evaluate(key: str, implementation: Any, include_private: bool = False) -> PartResult:
    """Run a part's tests on ``implementation`` here, in this process.

    Args:
        key: the part, e.g. ``"tp1.learned_pos"``.
        implementation: the student's function or class (or, for a part that grades a
            value the notebook produces, that value).
        include_private: also run private tests (only the grader has them).

    Returns:
        A :class:`~vitcourse.grading.results.PartResult`.
    """
    part = get_part(key)
    if part.manual:
        return PartResult(part.key, part.title, part.points, note="Esta parte la corrige el docente.")
    if isinstance(part.target, Variable):
        implementation = to_wire(implementation)
    tests = part.tests if include_private else part.public_tests
    results = [judge(test, observe(test, implementation, part), reference_observation(test, part)) for test in tests]
    return PartResult(part.key, part.title, part.points, results)


def check(key: str, implementation: Any) -> None:
    """Check a part of a TP and show the verdict (HTML in Jupyter/Colab, text elsewhere).

    ``check("tp1.learned_pos", LearnedPositionalEmbedding)`` runs the part's tests on the
    class and compares every result with the course's reference implementation on
    random inputs with fixed seeds. A part not implemented yet (its code still raises
    ``NotImplementedError``) is reported as such, with no traceback.

    Args:
        key: the part, e.g. ``"tp1.learned_pos"``.
        implementation: what you wrote for that part: the function or class (or, for a
            part that grades a value your notebook computes, that value).
    """
    result = evaluate(key, implementation)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python
        print(result.to_text())
        return
    if get_ipython() is None:
        print(result.to_text())
    else:
        display(result)
