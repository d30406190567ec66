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

The grader's side is at the end of this file: :class:`SandboxLauncher` (the fork
server, or one interpreter per job elsewhere) and :func:`run_sandbox`, which watches
the steps, kills and restarts, and reads the outcomes back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .processes import kill_sessions, watch_grader

if TYPE_CHECKING:
    from .grader import GradeOptions
    from .submission import Chunk
    from .tpdir import TPConfig

__all__ = ["SandboxLauncher", "main", "run", "run_sandbox", "serve"]

MAX_OUTCOME_BYTES = 64 * 2**20


def _log(stream, **event) -> None:
    stream.write(json.dumps(event, ensure_ascii=False) + "\n")
    stream.flush()


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
                outcome = observe(test, namespace[target], get_part(test.part_key))
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


class SandboxLauncher:
    """Starts :mod:`.sandbox` jobs: forked from one server per batch on Linux, else a fresh interpreter each.

    ``start`` returns an id (a process and session id) that ``alive`` and ``kill`` take.
    """

    def __init__(self, tp: TPConfig, options: GradeOptions, env: dict[str, str], folder: Path) -> None:
        self.env, self.lock = env, threading.Lock()
        self.processes: dict[int, subprocess.Popen] = {}
        self.server: subprocess.Popen | None = None
        if sys.platform != "linux":
            return
        config = folder / "sandbox-server.json"
        config.write_text(
            json.dumps(
                {
                    "checks": tp.checks,
                    "pythonpath": [str(p) for p in tp.pythonpath],
                    "private": str(options.private_tests) if options.private_tests else None,
                }
            ),
            encoding="utf-8",
        )
        self.server = subprocess.Popen(
            [sys.executable, "-m", "vitcourse.grading.sandbox", "--serve", str(config)],
            cwd=folder,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )

    def start(self, job: Path, workdir: Path) -> int:
        with self.lock:
            if self.server is not None and self.server.poll() is None:
                try:
                    self.server.stdin.write(f"{job}\n")
                    self.server.stdin.flush()
                    return int(self.server.stdout.readline())
                except (OSError, ValueError):  # the server is gone: fall back to one interpreter per job
                    self.server = None
        process = subprocess.Popen(
            [sys.executable, "-m", "vitcourse.grading.sandbox", str(job)],
            cwd=workdir,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes[process.pid] = process
        return process.pid

    def alive(self, pid: int) -> bool:
        if pid in self.processes:
            return self.processes[pid].poll() is None
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True

    def kill(self, pid: int) -> None:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
                break
            except OSError:
                continue
        if pid in self.processes:
            self.processes.pop(pid).wait()
        else:
            while self.alive(pid):
                time.sleep(0.01)

    def close(self) -> None:
        if self.server is not None:
            try:
                self.server.stdin.close()
                self.server.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                kill_sessions(self.server)


def run_sandbox(
    workdir: Path,
    chunks: list[Chunk],
    tests: list[tuple[dict, object]],
    tp: TPConfig,
    options: GradeOptions,
    launcher: SandboxLauncher,
) -> tuple[dict[str, dict], list[str], bool]:
    """Run the student's definitions and the probes in :mod:`.sandbox` processes.

    A step (a cell's definitions, a test) that passes ``test_timeout`` or crashes the
    process is recorded, the process is killed and started again without that step.

    Returns:
        ``(outcomes, problems, timed_out)``: outcome per test id, Spanish lines about
        cells that failed in the sandbox, and whether any step ran out of time.
    """
    folder = workdir / "sandbox"
    folder.mkdir()
    entries = [entry for entry, _ in tests]
    skip: dict[str, str] = {}  # step -> why it is skipped ("timeout" or "crash")
    cell_errors: dict[str, str] = {}
    deadline = time.monotonic() + max(options.timeout, options.test_timeout * 2)
    out_of_time = False
    for _ in range(len(entries) + len(chunks) + 1):
        remaining = [e for e in entries if not (folder / e["file"]).exists() and f"test:{e['id']}" not in skip]
        if not remaining or out_of_time:
            break
        job = {
            "checks": tp.checks,
            "pythonpath": [str(p) for p in tp.pythonpath],
            "private": str(options.private_tests) if options.private_tests else None,
            "chunks": [{"cell": c.cell, "code": c.code} for c in chunks if not c.error],
            "tests": remaining,
            "skip": sorted(skip),
            "out": str(folder),
            "cwd": str(workdir),
            "grader_pid": os.getpid(),
        }
        (folder / "job.json").write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
        progress_path = folder / "progress.jsonl"
        progress_path.write_text("", encoding="utf-8")
        pid = launcher.start(folder / "job.json", workdir)
        current, started = None, time.monotonic()
        while launcher.alive(pid):
            time.sleep(0.05)
            events = _read_progress(progress_path)
            if events and events[-1].get("event") == "done":
                break
            running = events[-1]["step"] if events and events[-1].get("event") == "start" else None
            if running != current:
                current, started = running, time.monotonic()
            if current and time.monotonic() - started > options.test_timeout:
                launcher.kill(pid)
                skip[current] = "timeout"
                break
            if time.monotonic() > deadline:
                launcher.kill(pid)
                out_of_time = True
                break
        if (folder / "fatal.txt").exists():
            raise RuntimeError(f"the sandbox failed: {(folder / 'fatal.txt').read_text(encoding='utf-8')[-2000:]}")
        events = _read_progress(progress_path)
        for event in events:
            if event.get("event") == "end" and event.get("error"):
                cell_errors[event["step"]] = event["error"]
        if events and events[-1].get("event") == "start" and events[-1]["step"] not in skip and not out_of_time:
            skip[events[-1]["step"]] = "crash"  # the process died inside this step
        if events and events[-1].get("event") == "done":
            break
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
