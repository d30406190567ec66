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

Importing ``torch`` costs more than testing a small TP, so on Linux the grader starts
one *fork server* per batch, ``python -m vitcourse.grading.sandbox --serve``: it
imports torch and the checks once, then forks a fresh child (its own session, so it
can be killed with whatever it starts) for each job path it reads on stdin, and
answers with the child's pid. A child is a copy: what the student's code changes in
it dies with it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

__all__ = ["main", "serve", "watch_grader"]


def _log(stream, **event) -> None:
    stream.write(json.dumps(event, ensure_ascii=False) + "\n")
    stream.flush()


def watch_grader(pid: int | None, on_exit=None) -> None:
    """Exit as soon as the grader process ``pid`` is gone (Ctrl-C on the instructor's side)."""
    if not pid:
        return

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                if on_exit is not None:
                    on_exit()
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, daemon=True).start()


def run(job: dict) -> None:
    """Execute the definitions and probes of ``job`` (see :mod:`.grader` for its fields)."""
    import torch

    watch_grader(job.get("grader_pid"))

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
                outcome = observe(test, namespace[target])
            except BaseException as exc:  # noqa: BLE001 (e.g. SystemExit raised by the student's code)
                outcome = {"status": "error", "type": type(exc).__name__, "message": str(exc)[:300], "where": ""}
        torch.save({"id": test.id, "outcome": outcome}, out / f"{entry['file']}")
        _log(progress, event="end", step=step)
    _log(progress, event="done")


def serve(config: dict) -> None:
    """Fork server: load once, then fork a child per job path read on stdin, answering its pid."""
    import torch  # noqa: F401  (the point: imported once, shared by every child)

    from vitcourse.grading.registry import load_checks, load_private_tests

    load_checks(config["checks"], [Path(p) for p in config["pythonpath"]])
    if config.get("private"):
        load_private_tests(Path(config["private"]))
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the system
    for line in sys.stdin:
        job_path = line.strip()
        if not job_path:
            continue
        pid = os.fork()
        if pid == 0:  # the child: a fresh session, no pipes to the grader
            try:
                os.setsid()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                job = json.loads(Path(job_path).read_text(encoding="utf-8"))
                os.chdir(job["cwd"])
                run(job)
            except BaseException:  # noqa: BLE001 (a bug of ours: leave it where the grader looks)
                import traceback

                Path(job_path).with_name("fatal.txt").write_text(traceback.format_exc(), encoding="utf-8")
            finally:
                os._exit(0)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--serve":
        serve(json.loads(Path(args[1]).read_text(encoding="utf-8")))
        return 0
    if len(args) != 1:
        print("usage: python -m vitcourse.grading.sandbox JOB.json | --serve CONFIG.json", file=sys.stderr)
        return 2
    try:
        run(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    except BaseException:
        import traceback

        Path(args[0]).with_name("fatal.txt").write_text(traceback.format_exc(), encoding="utf-8")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
