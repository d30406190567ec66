"""The process that holds a student's code while the grader tests it.

``python -m vitcourse.grading.sandbox JOB.json`` runs the definitions extracted from a
submission (:func:`vitcourse.grading.submission.extract_definitions`), cell by cell,
then each requested test's probe on the student's object, and saves each *outcome*
(plain data, :func:`vitcourse.grading.checking.observe`) to its own file. It judges
nothing: the grader, a different process where no student code ever ran, loads the
outcomes with ``torch.load(weights_only=True)`` and compares them with the reference.
Whatever the student's code does here (redefine ``check``, patch ``torch`` or
``vitcourse``) can only change what it reports about itself.

Every step (a cell, a test) is announced in ``progress.jsonl`` before it starts and
after it ends, so the grader can tell which step hung or crashed, kill this process,
and start it again without that step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["main"]


def _log(stream, **event) -> None:
    stream.write(json.dumps(event, ensure_ascii=False) + "\n")
    stream.flush()


def run(job: dict) -> None:
    """Execute the definitions and probes of ``job`` (see :mod:`.grader` for its fields)."""
    import torch

    from vitcourse.grading.checking import observe
    from vitcourse.grading.registry import get_part, load_checks, load_private_tests

    out = Path(job["out"])
    load_checks(job["checks"], [Path(p) for p in job["pythonpath"]])
    if job.get("private"):
        load_private_tests(Path(job["private"]))
    # Resolve every test before any student code runs.
    tests = []
    for entry in job["tests"]:
        part = get_part(entry["id"].split("/")[0])
        test = next(t for t in part.tests if t.id == entry["id"])
        tests.append((entry, test))

    progress = open(out / "progress.jsonl", "a", encoding="utf-8")  # noqa: SIM115 (kept open on purpose)
    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    skip = set(job.get("skip", []))
    for chunk in job["chunks"]:
        step = f"cell:{chunk['cell']}"
        if step in skip:
            continue
        _log(progress, event="start", step=step)
        error = ""
        try:
            exec(compile(chunk["code"], f"<celda {chunk['cell']}>", "exec"), namespace)  # noqa: S102
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the student's, not ours
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
        _log(progress, event="end", step=step, error=error)

    for entry, test in tests:
        step = f"test:{test.id}"
        if step in skip:
            continue
        _log(progress, event="start", step=step)
        target = entry["target"]
        if target not in namespace:
            outcome = {"status": "missing", "message": f"el notebook no define `{target}`"}
        else:
            try:
                outcome = observe(test, namespace[target])
            except BaseException as exc:  # e.g. SystemExit raised by the student's code
                outcome = {"status": "error", "type": type(exc).__name__, "message": str(exc)[:300], "where": ""}
        torch.save({"id": test.id, "outcome": outcome}, out / f"{entry['file']}")
        _log(progress, event="end", step=step)
    _log(progress, event="done")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m vitcourse.grading.sandbox JOB.json", file=sys.stderr)
        return 2
    run(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
