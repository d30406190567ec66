"""Batch grading: every submission of a TP, one CSV row and one feedback file each.

``vitcourse grade exercises/tp1 entregas/*.ipynb --out notas.csv`` calls :func:`grade`.
For each submission, in a temporary folder (the original file is only read):

1. **read** it (:func:`~vitcourse.grading.submission.read_submission`); a file that is
   not a notebook, or an empty one, is ``invalid`` and graded 0;
2. **run** a copy in a fresh kernel (:mod:`.execute`) with ``PROFILE=smoke``, a per-cell
   and a total timeout; failing cells don't stop the run;
3. **test** the student's definitions in separate processes (:mod:`.sandbox`) and judge
   their outcomes here, against the reference implementations: the public tests in one,
   the instructor's private tests in another; values the notebook produced are read
   from the kernel at the end of the run and judged here;
4. **record** the row and the feedback file at once (a crash later loses nothing), and
   go on with the next submission whatever happened.

Everything of the student's runs confined by the operating system (:mod:`.isolation`):
no network, a filesystem it can read only where it must and write only in its own
temporary folder, resource limits, its own process tree. Where that is not available the
grader refuses to start (:class:`~vitcourse.grading.isolation.IsolationUnavailable`,
one line) unless ``unsafe_no_isolation`` is set. A private test's text never reaches
what the student receives: its verdict in the feedback is its name and pass or fail.

The status of a submission: ``invalid`` (not gradable), ``timeout`` (a cell, the whole
run or a test ran out of time), ``error`` (a cell raised something other than
``NotImplementedError``, or grading itself failed), ``ok`` (every automatic point),
``partial`` (anything else). Grades are deterministic: tests use fixed seeds, so a rerun
gives the same CSV (apart from the ``seconds`` column).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import traceback
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from .checking import judge, observe, reference_observation
from .execute import run_notebook
from .feedback import render_feedback
from .isolation import Isolation, IsolationUnavailable, Limits, acquire_uids, release_uids
from .registry import Assignment, Definition, Variable, load_checks, load_private_tests
from .results import PartResult, TestResult
from .sandbox import run_sandbox
from .submission import (
    InvalidSubmission,
    bindings,
    dependent_cells,
    extract_definitions,
    read_submission,
    reference_used,
    unfinished_names,
    written_answers,
)
from .tpdir import TPConfig, load_tp

__all__ = ["GradeOptions", "IsolationUnavailable", "SubmissionResult", "grade", "student_ids"]

STATUSES = ("ok", "partial", "error", "timeout", "invalid")
MAX_EXPORT_BYTES = 64 * 2**20
# Without isolation (unsafe mode) proxies point at a closed local port, so a request fails at once.
NO_NETWORK_PROXY = "http://127.0.0.1:9"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
# Probes run here (references, values the notebook produced) seed torch's global generator:
# one at a time, whatever the threads grading at once (and imports such as transformers'
# lazy modules are not safe to race either).
_PROBES = threading.RLock()


@dataclass
class GradeOptions:
    """How to grade; ``None`` timeouts take the TP's values from its ``tp.yml``.

    Attributes:
        timeout: seconds for a whole submission's notebook run.
        cell_timeout: seconds for one cell of the notebook.
        test_timeout: seconds for one test (or one cell's definitions) in the sandbox.
        private_tests: a folder of private test modules.
        workers: submissions graded at the same time.
        feedback_dir: where the feedback files go (default: next to the CSV).
        max_output_bytes: outputs recorded per notebook run.
        limits: memory, processes, open files and file size of each confined process.
        unsafe_no_isolation: run submissions without the operating system's isolation
            (resource limits only) where it is not available. Never for untrusted code.
        scratch: where each submission's temporary folder goes (default: the system's).
    """

    timeout: float | None = None
    cell_timeout: float | None = None
    test_timeout: float | None = None
    private_tests: Path | None = None
    workers: int = 1
    feedback_dir: Path | None = None
    max_output_bytes: int = 2 * 2**20
    limits: Limits = field(default_factory=Limits)
    unsafe_no_isolation: bool = False
    scratch: Path | None = None


@dataclass
class SubmissionResult:
    """Everything known about one graded submission."""

    student: str
    file: str
    sha256: str = ""
    status: str = "error"
    detail: str = ""
    parts: list[PartResult] = field(default_factory=list)
    cells: list[dict] = field(default_factory=list)
    sandbox_errors: list[str] = field(default_factory=list)
    answers: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0
    truncated_output: bool = False

    @property
    def total(self) -> float:
        return round(sum(p.score for p in self.parts), 2)


def student_ids(paths: list[Path]) -> list[str]:
    """A student id per file: its name without extension (Unicode NFC), made unique in order."""
    ids, seen = [], {}
    for path in paths:
        base = unicodedata.normalize("NFC", path.name.removesuffix(path.suffix) if path.suffix else path.name)
        base = "".join(ch if ch.isprintable() and ch not in '/\\:*?"<>|' else "_" for ch in base) or "entrega"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}~{seen[base]}")
    return ids


def grading_environment(tp: TPConfig, workers: int, unsafe: bool = False) -> dict[str, str]:
    """What confined code adds to its clean environment: offline, smoke profile, the package importable."""
    paths = [str(PACKAGE_ROOT), *(str(p) for p in tp.pythonpath)]
    threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    env = {
        "PYTHONPATH": os.pathsep.join(paths),
        "VITCOURSE_PROFILE": "smoke",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PIP_NO_INDEX": "1",
        "PYTHONHASHSEED": "0",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", threads),
        "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", threads),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", threads),
    }
    if unsafe:
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            env[name] = NO_NETWORK_PROXY
    return env


# --------------------------------------------------------------------------- one submission


def _exports(path: Path) -> dict:
    if not path.exists() or path.stat().st_size > MAX_EXPORT_BYTES:
        return {}
    try:
        values = torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001
        return {}
    return values if isinstance(values, dict) else {}


def _variable_outcome(test, name: str, exports: dict, ran_to_end: bool) -> dict:
    entry = exports.get(name)
    if not isinstance(entry, dict) or entry.get("missing") or not ("value" in entry or "error" in entry):
        why = "" if ran_to_end else " (el notebook no llegó al final)"
        return {"status": "missing", "message": f"al terminar el notebook no existe la variable `{name}`{why}"}
    if "error" in entry:
        return {"status": "error", "type": "Valor ilegible", "message": str(entry["error"])}
    with _PROBES:
        return observe(test, entry["value"])


def _judge_safely(test, outcome: dict, expected) -> TestResult:
    with _PROBES:  # a TP's own judge may compute with torch
        try:
            return judge(test, outcome, expected)
        except Exception as error:  # noqa: BLE001 (data the comparison can't read)
            return judge(test, {"status": "error", "type": "Resultado ilegible", "message": str(error)[:200]}, None)


def _unexpected_errors(cells: list[dict], dependent: set[int]) -> list[dict]:
    """Cell errors that aren't "not implemented yet", nor caused by an unfinished part or an earlier failure."""
    unexpected, failed_before = [], False
    for cell in cells:
        if cell["status"] != "error":
            continue
        consequence = cell["cell"] in dependent or (cell.get("ename") == "NameError" and failed_before)
        if cell.get("ename") != "NotImplementedError" and not consequence:
            unexpected.append(cell)
        failed_before = True
    return unexpected


def _status_and_detail(
    result: SubmissionResult,
    run_timed_out: bool | str,
    sandbox_timed_out: bool,
    dependent: set[int],
    assignment: Assignment,
    options: GradeOptions,
) -> tuple[str, str]:
    timeouts = [c for c in result.cells if c["status"] == "timeout"]
    errors = _unexpected_errors(result.cells, dependent)
    max_auto = sum(p.points for p in assignment.auto_parts)
    if run_timed_out == "stuck":
        where = f"la celda {timeouts[-1]['cell']}" if timeouts else "una celda"
        return (
            "timeout",
            f"{where} superó {options.cell_timeout:g} s y no respondió a la interrupción: se detuvo el notebook",
        )
    if run_timed_out:
        where = f" (celda {timeouts[0]['cell']})" if timeouts else ""
        return "timeout", f"el notebook superó el límite total de {options.timeout:g} s{where}"
    if timeouts:
        return "timeout", f"la celda {timeouts[0]['cell']} superó {options.cell_timeout:g} s"
    if sandbox_timed_out:
        return "timeout", f"una prueba superó {options.test_timeout:g} s"
    if errors:
        first = errors[0]
        return "error", f"celda {first['cell']}: {first.get('ename', '')}: {first.get('evalue', '')}"[:200]
    if not result.cells:
        return "error", "el notebook no se pudo ejecutar"
    if result.total >= max_auto:
        return "ok", "todas las partes automáticas correctas"
    done = sum(1 for p in result.parts if p.score >= p.points)
    return "partial", f"{done} de {len(result.parts)} partes automáticas completas"


@dataclass
class Context:
    """What every submission of a batch is graded with."""

    tp: TPConfig
    assignment: Assignment
    tests: dict[str, list]  # part key -> the tests that count in this batch
    references: dict[str, object]  # test id -> the reference's observation
    options: GradeOptions
    env: dict[str, str]  # what confined code adds to its clean environment
    feedback_dir: Path
    isolation: Isolation
    uids: queue.Queue  # unprivileged user ids free for a submission (None when not root)
    log: object = print


def _owned(path: Path, uid: int | None) -> Path:
    """Make ``path`` (a folder, recursively) belong to ``uid``, so confined code can write it."""
    if uid is not None:
        for item in [path, *path.rglob("*")]:
            os.chown(item, uid, uid, follow_symlinks=False)
    return path


def _readable(path: Path) -> Path:
    """Let any user read ``path`` (a folder, recursively): confined code runs as another user."""
    for item in [path, *path.rglob("*")]:
        item.chmod(0o755 if item.is_dir() else 0o644)
    return path


def _sandbox_runs(
    workdir: Path, chunks, to_run: list, context: Context, uid: int | None
) -> tuple[dict[str, dict], list[str], bool]:
    """Test the definitions: public tests in one sandbox, private ones in another."""
    tp, options, isolation = context.tp, context.options, context.isolation
    outcomes, problems, timed_out = {}, [], False
    public = [(entry, test) for entry, test in to_run if not test.private]
    private = [(entry, test) for entry, test in to_run if test.private]
    for name, tests in (("public", public), ("private", private)):
        if not tests:
            continue
        folder = workdir / name
        folder.mkdir()
        for asset in tp.assets:
            (shutil.copytree if asset.is_dir() else shutil.copy2)(asset, folder / asset.name)
        _owned(folder, uid)
        mounted = []
        private_dir = None
        if name == "private":
            private_dir = _readable(
                shutil.copytree(
                    options.private_tests, workdir / "private-tests", ignore=shutil.ignore_patterns("__pycache__")
                )
            )
            mounted.append(private_dir)

        def launch(job: Path, folder=folder, mounted=mounted):
            job.chmod(0o644)
            command = isolation.command(
                [sys.executable, "-m", "vitcourse.grading.sandbox", str(job)],
                writable=folder,
                env=isolation.environment(folder, context.env),
                readable=[job, *mounted],
                uid=uid,
            )
            return isolation.popen(command)

        found, lines, late = run_sandbox(folder, chunks, tests, tp, options, launch, isolation.kill, private_dir)
        outcomes.update(found)
        timed_out |= late
        if name == "public":
            problems += lines  # the private run's messages could carry what its tests contain
    return outcomes, problems, timed_out


def grade_one(path: Path, student: str, context: Context) -> SubmissionResult:
    """Grade one submission (the four steps of the module docstring)."""
    tp, assignment, options = context.tp, context.assignment, context.options
    start = time.monotonic()
    result = SubmissionResult(student=student, file=path.name)
    auto = assignment.auto_parts
    try:
        result.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        notebook = read_submission(path, tp.key)
    except (InvalidSubmission, OSError) as error:
        result.status, result.detail = (
            "invalid",
            str(error) if isinstance(error, InvalidSubmission) else (f"no se pudo leer el archivo: {error.strerror}"),
        )
        result.parts = [PartResult(p.key, p.title, p.points, note="Entrega inválida: no se corrigió.") for p in auto]
        result.seconds = round(time.monotonic() - start, 1)
        return result
    result.answers = written_answers(notebook)
    workdir = Path(tempfile.mkdtemp(prefix="vitcourse-grade-", dir=options.scratch))
    uid = context.uids.get()
    try:
        # run/: the kernel's folder, the only one it may write; the runner's files stay in workdir.
        run = workdir / "run"
        run.mkdir()
        for asset in tp.assets:
            (shutil.copytree if asset.is_dir() else shutil.copy2)(asset, run / asset.name)
        copy = run / "entrega.ipynb"
        shutil.copyfile(path, copy)
        _owned(run, uid)
        isolation = context.isolation
        python = [sys.executable, "-m", "ipykernel_launcher", "-f", str(run / ".connection.json")]
        kernel = isolation.command(
            python, writable=run, env=isolation.environment(run, context.env), uid=uid, connection="{connection_file}"
        )
        variables = [p.target_name for p in auto if isinstance(p.target, Variable)]
        summary, executed = run_notebook(workdir, copy, options, variables, kernel)
        result.cells = summary["cells"]
        if summary.get("aborted") and all(cell["status"] == "not-run" for cell in result.cells):
            result.cells = []  # the kernel never started: nothing of the notebook ran
            context.log(f"{student}: the notebook could not run: {summary['aborted']}")
        run_timed_out = "stuck" if summary.get("stuck") else summary["timed_out"]
        result.truncated_output = bool(summary.get("truncated"))
        if executed is not None and executed.exists():
            shutil.copyfile(executed, context.feedback_dir / f"{student}.ipynb")
        exports = _exports(run / "exports.pt")

        chunks = extract_definitions(notebook)
        kinds = bindings(chunks)
        unfinished = unfinished_names(notebook)
        to_run, fixed = [], {}
        for part in auto:
            if not isinstance(part.target, Definition):
                continue
            kind = kinds.get(part.target_name)
            used = "" if kind in (None, "import") else reference_used(chunks, part.target_name, part.originals)
            for test in context.tests[part.key]:
                if part.target_name in unfinished:  # still the student notebook's stub: nothing to run
                    fixed[test.id] = {"status": "pending"}
                elif kind is None:
                    fixed[test.id] = {"status": "missing", "message": f"el notebook no define `{part.target_name}`"}
                elif kind == "import":
                    fixed[test.id] = {
                        "status": "imported",
                        "message": f"`{part.target_name}` usa la implementación de referencia en lugar de escribirla",
                    }
                elif used:
                    fixed[test.id] = {
                        "status": "imported",
                        "message": f"`{part.target_name}` usa `{used}`, ya hecha, en lugar de escribirla",
                    }
                else:
                    to_run.append(({"id": test.id, "target": part.target_name, "file": f"{len(to_run)}.pt"}, test))
        outcomes, sandbox_errors, sandbox_timed_out = ({}, [], False)
        if to_run:
            outcomes, sandbox_errors, sandbox_timed_out = _sandbox_runs(workdir, chunks, to_run, context, uid)
        result.sandbox_errors = [f"celda {c.cell}: {c.error}" for c in chunks if c.error] + sandbox_errors
        outcomes.update(fixed)
        ran_to_end = bool(result.cells) and all(c["status"] != "not-run" for c in result.cells) and not run_timed_out
        for part in auto:
            verdicts = []
            for test in context.tests[part.key]:
                if isinstance(part.target, Variable):
                    outcome = _variable_outcome(test, part.target_name, exports, ran_to_end)
                else:
                    outcome = outcomes[test.id]
                verdict = _judge_safely(test, outcome, context.references[test.id])
                if test.private:  # its name and verdict only: nothing of what it tried or saw
                    verdict.expected = verdict.got = verdict.hint = ""
                verdicts.append(verdict)
            result.parts.append(PartResult(part.key, part.title, part.points, verdicts))
        dependent = dependent_cells(notebook, unfinished)
        result.status, result.detail = _status_and_detail(
            result, run_timed_out, sandbox_timed_out, dependent, assignment, options
        )
    finally:
        context.uids.put(uid)
        shutil.rmtree(workdir, ignore_errors=True)
    result.seconds = round(time.monotonic() - start, 1)
    return result


# --------------------------------------------------------------------------- the whole batch


def _columns(assignment: Assignment) -> list[str]:
    return ["student", "status", *(p.key for p in assignment.parts), "total", "seconds", "detail", "file", "sha256"]


def _row(result: SubmissionResult, assignment: Assignment) -> list[str]:
    scores = {p.key: f"{p.score:g}" for p in result.parts}
    parts = [("" if part.manual else scores.get(part.key, "0")) for part in assignment.parts]
    return [
        result.student,
        result.status,
        *parts,
        f"{result.total:g}",
        f"{result.seconds:.1f}",
        result.detail,
        result.file,
        result.sha256,
    ]


def _csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def grade(
    tp_folder: str | Path,
    submissions: list[str | Path],
    out: str | Path,
    options: GradeOptions | None = None,
    log=print,
) -> list[SubmissionResult]:
    """Grade every submission; write ``out`` (CSV) and a feedback file per student.

    Rows are appended (and flushed to disk) as each submission is graded, and the file
    is rewritten sorted by student at the end, so an interrupted run keeps what it did.

    Args:
        tp_folder: the TP's folder (with ``tp.yml``).
        submissions: notebook files (a folder stands for every file in it).
        out: the CSV to write.
        options: timeouts, private tests, workers (see :class:`GradeOptions`).
        log: where progress lines go.

    Returns:
        One :class:`SubmissionResult` per submission, sorted by student.
    """
    tp = load_tp(tp_folder)
    options = replace(options or GradeOptions())
    # Before anything else: no isolation, no grading (unless the caller accepts the risk).
    isolation = Isolation(options.limits, unsafe=options.unsafe_no_isolation, readable=tp.pythonpath)
    options.timeout = options.timeout or tp.timeout
    options.cell_timeout = options.cell_timeout or tp.cell_timeout
    options.test_timeout = options.test_timeout or tp.test_timeout
    assignment = load_checks(tp.checks, tp.pythonpath)
    private = load_private_tests(options.private_tests) if options.private_tests else []
    # Only this batch's private tests: another folder loaded earlier in this process doesn't count.
    tests = {part.key: [t for t in part.tests if not t.private or t.id in private] for part in assignment.auto_parts}
    files: list[Path] = []
    for item in map(Path, submissions):
        files += sorted(p for p in item.iterdir() if p.is_file()) if item.is_dir() else [item]
    if not files:
        raise ValueError("no submissions to grade: pass notebook files or a folder with them")
    with _PROBES:
        references = {
            test.id: reference_observation(test, part) for part in assignment.auto_parts for test in tests[part.key]
        }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    feedback_dir = Path(options.feedback_dir or out.with_name(out.stem + "_devoluciones"))
    feedback_dir.mkdir(parents=True, exist_ok=True)
    env = grading_environment(tp, options.workers, options.unsafe_no_isolation)
    columns = _columns(assignment)
    out.write_text(_csv_line(columns), encoding="utf-8")
    lock = threading.Lock()
    results: list[SubmissionResult] = []
    ids = student_ids(files)
    log(
        f"grading {len(files)} submissions of {tp.key} ({len(private)} private tests), {options.workers} at a time, "
        + ("UNCONFINED (--unsafe-no-isolation)" if isolation.unsafe else "each in its own sandbox (bubblewrap)")
    )

    def one(path: Path, student: str) -> SubmissionResult:
        try:
            result = grade_one(path, student, context)
        except Exception:  # noqa: BLE001 (a bug of ours must not lose the batch: record it and go on)
            log(f"internal error grading {path}:\n{traceback.format_exc()}")
            result = SubmissionResult(
                student=student,
                file=path.name,
                status="error",
                detail="error interno del corrector; avisale al docente",
            )
            result.parts = [
                PartResult(p.key, p.title, p.points, note="No se pudo corregir (error interno).")
                for p in assignment.auto_parts
            ]
        text = render_feedback(result, assignment, private)
        with lock:
            (feedback_dir / f"{student}.md").write_text(text, encoding="utf-8")
            with open(out, "a", encoding="utf-8") as stream:
                stream.write(_csv_line(_row(result, assignment)))
                stream.flush()
                os.fsync(stream.fileno())
            results.append(result)
            log(
                f"[{len(results)}/{len(files)}] {student}: {result.status} {result.total:g}"
                f"/{sum(p.points for p in assignment.auto_parts):g} ({result.seconds:.1f} s)"
            )
        return result

    uids: queue.Queue = queue.Queue()
    taken = acquire_uids(max(1, options.workers))
    for uid in taken:
        uids.put(uid)
    context = Context(tp, assignment, tests, references, options, env, feedback_dir, isolation, uids, log)
    try:
        with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
            list(pool.map(one, files, ids))
    finally:
        release_uids(taken)
    results.sort(key=lambda r: r.student)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(
        "".join(_csv_line(line) for line in [columns] + [_row(r, assignment) for r in results]), encoding="utf-8"
    )
    os.replace(temporary, out)
    return results
