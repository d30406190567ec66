"""The process that holds a student's code while the grader tests it.

``python -m vitcourse.grading.sandbox JOB.json`` runs, inside the submission's sandbox
(:mod:`.isolation`), the definitions extracted from a submission
(:func:`vitcourse.grading.submission.extract_definitions`), cell by cell, then each
requested test's probe on the student's object, and saves each *outcome* (plain data,
:func:`vitcourse.grading.checking.observe`) to its own file. It judges nothing: the
grader, a different process where no student code ever ran, loads the outcomes with
``torch.load(weights_only=True)`` and compares them with the reference. Whatever the
student's code does here (redefine ``check``, patch ``torch`` or ``vitcourse``) can only
change what it reports about itself.

Every step (a cell, a test) is announced in ``progress.jsonl`` before it starts and
after it ends, so the grader can tell which step hung or crashed, kill the sandbox, and
start it again without that step.

The public tests and the instructor's private tests never share a process: the grader
runs the public ones in one sandbox, whose errors the student reads in the feedback, and
the private ones in another, whose outcomes are reduced to a verdict per test. The
private tests' files are mounted only in that second sandbox.

The grader's side is at the end of this file: :func:`run_sandbox`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

    from .grader import GradeOptions
    from .submission import Chunk
    from .tpdir import TPConfig

__all__ = ["main", "run", "run_sandbox"]

MAX_OUTCOME_BYTES = 64 * 2**20


def _log(stream, **event) -> None:
    stream.write(json.dumps(event, ensure_ascii=False) + "\n")
    stream.flush()


def run(job: dict) -> None:
    """Execute the definitions and probes of ``job`` (see :func:`run_sandbox` for its fields)."""
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
        except BaseException as exc:  # noqa: BLE001 (SystemExit and KeyboardInterrupt too: the student's, not ours)
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
                outcome = observe(test, namespace[target], get_part(test.part_key))
            except BaseException as exc:  # noqa: BLE001 (e.g. SystemExit raised by the student's code)
                outcome = {"status": "error", "type": type(exc).__name__, "message": str(exc)[:300], "where": ""}
        torch.save({"id": test.id, "outcome": outcome}, out / f"{entry['file']}")
        _log(progress, event="end", step=step)
    _log(progress, event="done")


# --------------------------------------------------------------------------- the grader's side


def _read_progress(path: Path) -> list[dict]:
    events = []
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


def run_sandbox(
    folder: Path,
    chunks: list[Chunk],
    tests: list[tuple[dict, object]],
    tp: TPConfig,
    options: GradeOptions,
    launch: Callable[[Path], subprocess.Popen],
    kill: Callable[[subprocess.Popen], None],
    private: Path | None = None,
) -> tuple[dict[str, dict], list[str], bool]:
    """Run the student's definitions and the probes in sandboxes, one after another.

    A step (a cell's definitions, a test) that passes ``test_timeout`` or crashes the
    process is recorded, the sandbox is killed and started again without that step.

    Args:
        folder: the sandbox's writable folder (outcomes and progress go there).
        chunks: the submission's definitions.
        tests: ``(entry, test)`` pairs; an entry is ``{"id", "target", "file"}``.
        tp: the TP (its checks module and ``pythonpath``).
        options: the timeouts.
        launch: ``launch(job_path)`` starts ``python -m vitcourse.grading.sandbox
            job_path`` confined and returns the process; the job file sits outside
            ``folder`` and is mounted read-only.
        kill: kills a process ``launch`` started, with everything in its sandbox.
        private: the folder of private tests, as the sandbox sees it (``None``: public
            tests only).

    Returns:
        ``(outcomes, problems, timed_out)``: outcome per test id, Spanish lines about
        cells that failed in the sandbox, and whether any step ran out of time.
    """
    entries = [entry for entry, _ in tests]
    skip: dict[str, str] = {}  # step -> why it is skipped ("timeout" or "crash")
    cell_errors: dict[str, str] = {}
    # Each step is bounded by test_timeout; this bounds the whole, start-ups included.
    deadline = time.monotonic() + options.timeout + options.test_timeout * (len(entries) + len(chunks))
    out_of_time = False
    job_path = folder.with_name(folder.name + "-job.json")
    progress_path = folder / "progress.jsonl"
    for _ in range(len(entries) + len(chunks) + 1):
        remaining = [e for e in entries if not (folder / e["file"]).exists() and f"test:{e['id']}" not in skip]
        if not remaining or out_of_time:
            break
        job = {
            "checks": tp.checks,
            "pythonpath": [str(p) for p in tp.pythonpath],
            "private": str(private) if private else None,
            "chunks": [{"cell": c.cell, "code": c.code} for c in chunks if not c.error],
            "tests": remaining,
            "skip": sorted(skip),
            "out": str(folder),
        }
        job_path.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
        progress_path.unlink(missing_ok=True)
        process = launch(job_path)
        current, started = None, time.monotonic()
        while process.poll() is None:
            time.sleep(0.05)
            events = _read_progress(progress_path)
            if events and events[-1].get("event") == "done":
                break
            running = events[-1]["step"] if events and events[-1].get("event") == "start" else None
            if running != current:
                current, started = running, time.monotonic()
            if current and time.monotonic() - started > options.test_timeout:
                skip[current] = "timeout"
                break
            if time.monotonic() > deadline:
                out_of_time = True
                break
        kill(process)
        fatal = folder / "fatal.txt"
        if fatal.exists():
            raise RuntimeError(f"the sandbox failed: {fatal.read_text(encoding='utf-8')[-2000:]}")
        events = _read_progress(progress_path)
        for event in events:
            if event.get("event") == "end" and event.get("error"):
                cell_errors[event["step"]] = event["error"]
        if events and events[-1].get("event") == "start" and events[-1]["step"] not in skip and not out_of_time:
            skip[events[-1]["step"]] = "crash"  # the process died inside this step
        if events and events[-1].get("event") == "done":
            break
        if not events and process.returncode not in (0, None) and not out_of_time:
            break  # it died before running anything: starting it again would do the same
    outcomes: dict[str, dict] = {}
    for entry in entries:
        outcomes[entry["id"]] = _load_outcome(
            folder / entry["file"], entry["id"], skip.get(f"test:{entry['id']}"), out_of_time, options.test_timeout
        )
    problems = [f"celda {step.split(':')[1]}: {error}" for step, error in cell_errors.items()]
    problems += [
        f"celda {step.split(':')[1]}: sus definiciones "
        + (f"no terminaron en {options.test_timeout:g} s" if why == "timeout" else "terminaron el proceso")
        for step, why in skip.items()
        if step.startswith("cell:")
    ]
    timed_out = out_of_time or "timeout" in skip.values()
    return outcomes, problems, timed_out


def _load_outcome(path: Path, test_id: str, skipped: str | None, out_of_time: bool, limit: float) -> dict:
    import torch

    if path.exists() and path.stat().st_size <= MAX_OUTCOME_BYTES:
        try:
            saved = torch.load(path, weights_only=True)
            if isinstance(saved, dict) and saved.get("id") == test_id and isinstance(saved.get("outcome"), dict):
                return saved["outcome"]
        except Exception:  # noqa: BLE001, S110 (a file the student's code overwrote with garbage)
            pass
        return {"status": "error", "type": "Resultado ilegible", "message": "la prueba dejó un resultado inválido"}
    if path.exists():
        return {"status": "error", "type": "Resultado enorme", "message": "la prueba devolvió demasiados datos"}
    if skipped == "timeout" or out_of_time:
        return {"status": "timeout", "message": f"la prueba no terminó en {limit:g} s"}
    if skipped == "crash":
        return {"status": "error", "type": "Proceso terminado", "message": "tu código terminó el proceso (¿exit()?)"}
    return {"status": "error", "type": "Sin resultado", "message": "la prueba no llegó a correr"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m vitcourse.grading.sandbox JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    try:
        run(job)
    except BaseException:
        import traceback

        # A bug of ours (the checks don't import, ...): where the grader looks, in the sandbox's folder.
        (Path(job["out"]) / "fatal.txt").write_text(traceback.format_exc(), encoding="utf-8")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
