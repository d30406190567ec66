"""Batch grading: every submission of a TP, one CSV row and one feedback file each.

``vitcourse grade exercises/tp1 entregas/*.ipynb --out notas.csv`` calls :func:`grade`.
For each submission, in a temporary folder (the original file is only read):

1. **read** it (:func:`~vitcourse.grading.submission.read_submission`); a file that is
   not a notebook, or an empty one, is ``invalid`` and graded 0;
2. **run** a copy with papermill in a fresh kernel (:mod:`.execute`): ``PROFILE=smoke``,
   no network (offline Hugging Face, proxies pointed at a closed local port), a
   per-cell and a total timeout, failing cells don't stop the run;
3. **test** the student's definitions in a separate sandbox process (:mod:`.sandbox`)
   and judge its outcomes here, against the reference implementations, with the public
   tests plus the instructor's private ones; values the notebook produced are read
   from the kernel at the end of the run and judged here;
4. **record** the row and the feedback file at once (a crash later loses nothing), and
   go on with the next submission whatever happened.

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
import shutil
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
from .registry import Assignment, Definition, Variable, load_checks, load_private_tests
from .results import PartResult, TestResult
from .sandbox import SandboxLauncher, run_sandbox
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

__all__ = ["GradeOptions", "SubmissionResult", "grade", "student_ids"]

STATUSES = ("ok", "partial", "error", "timeout", "invalid")
MAX_EXPORT_BYTES = 64 * 2**20
# Where proxies point in the kernel: a closed local port, so a request fails at once.
NO_NETWORK_PROXY = "http://127.0.0.1:9"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


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
    """

    timeout: float | None = None
    cell_timeout: float | None = None
    test_timeout: float | None = None
    private_tests: Path | None = None
    workers: int = 1
    feedback_dir: Path | None = None
    max_output_bytes: int = 2 * 2**20


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


def grading_environment(tp: TPConfig, workers: int) -> dict[str, str]:
    """The environment of the kernel and the sandbox: offline, smoke profile, the package importable."""
    env = dict(os.environ)
    paths = [str(PACKAGE_ROOT), *(str(p) for p in tp.pythonpath)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env.update(
        PYTHONPATH=os.pathsep.join(paths),
        VITCOURSE_PROFILE="smoke",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        PIP_NO_INDEX="1",
        PYTHONHASHSEED="0",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        JUPYTER_PLATFORM_DIRS="1",
    )
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env[name] = NO_NETWORK_PROXY
    for name in ("no_proxy", "NO_PROXY"):
        env.pop(name, None)
    if workers > 1:
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
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
    return observe(test, entry["value"])


def _judge_safely(test, outcome: dict, expected) -> TestResult:
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
    run_timed_out: bool,
    sandbox_timed_out: bool,
    dependent: set[int],
    assignment: Assignment,
    options: GradeOptions,
) -> tuple[str, str]:
    timeouts = [c for c in result.cells if c["status"] == "timeout"]
    errors = _unexpected_errors(result.cells, dependent)
    max_auto = sum(p.points for p in assignment.auto_parts)
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
    env: dict[str, str]
    feedback_dir: Path
    launcher: SandboxLauncher


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
    workdir = Path(tempfile.mkdtemp(prefix="vitcourse-grade-"))
    try:
        for asset in tp.assets:
            (shutil.copytree if asset.is_dir() else shutil.copy2)(asset, workdir / asset.name)
        copy = workdir / "entrega.ipynb"
        shutil.copyfile(path, copy)
        variables = [p.target_name for p in auto if isinstance(p.target, Variable)]
        result.cells, run_timed_out, executed = run_notebook(workdir, copy, options, variables, context.env)
        if executed is not None and executed.exists():
            shutil.copyfile(executed, context.feedback_dir / f"{student}.ipynb")
            result.truncated_output = "vitcourse: salidas cortadas" in executed.read_text(
                encoding="utf-8", errors="replace"
            )
        exports = _exports(workdir / "exports.pt")

        chunks = extract_definitions(notebook)
        kinds = bindings(chunks)
        to_run, fixed = [], {}
        for part in auto:
            if not isinstance(part.target, Definition):
                continue
            kind = kinds.get(part.target_name)
            used = "" if kind in (None, "import") else reference_used(chunks, part.target_name, part.originals)
            for test in context.tests[part.key]:
                if kind is None:
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
        outcomes, result.sandbox_errors, sandbox_timed_out = ({}, [], False)
        if to_run:
            outcomes, result.sandbox_errors, sandbox_timed_out = run_sandbox(
                workdir, chunks, to_run, tp, options, context.launcher
            )
        result.sandbox_errors = [f"celda {c.cell}: {c.error}" for c in chunks if c.error] + result.sandbox_errors
        outcomes.update(fixed)
        ran_to_end = bool(result.cells) and all(c["status"] != "not-run" for c in result.cells) and not run_timed_out
        for part in auto:
            verdicts = []
            for test in context.tests[part.key]:
                if isinstance(part.target, Variable):
                    outcome = _variable_outcome(test, part.target_name, exports, ran_to_end)
                else:
                    outcome = outcomes[test.id]
                verdicts.append(_judge_safely(test, outcome, context.references[test.id]))
            result.parts.append(PartResult(part.key, part.title, part.points, verdicts))
        dependent = dependent_cells(notebook, unfinished_names(notebook))
        result.status, result.detail = _status_and_detail(
            result, run_timed_out, sandbox_timed_out, dependent, assignment, options
        )
    finally:
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
    references = {
        test.id: reference_observation(test, part) for part in assignment.auto_parts for test in tests[part.key]
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    feedback_dir = Path(options.feedback_dir or out.with_name(out.stem + "_devoluciones"))
    feedback_dir.mkdir(parents=True, exist_ok=True)
    env = grading_environment(tp, options.workers)
    columns = _columns(assignment)
    out.write_text(_csv_line(columns), encoding="utf-8")
    lock = threading.Lock()
    results: list[SubmissionResult] = []
    ids = student_ids(files)
    log(f"grading {len(files)} submissions of {tp.key} ({len(private)} private tests), {options.workers} at a time")

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

    scratch = Path(tempfile.mkdtemp(prefix="vitcourse-grade-server-"))
    launcher = SandboxLauncher(tp, options, env, scratch)
    context = Context(tp, assignment, tests, references, options, env, feedback_dir, launcher)
    try:
        with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
            list(pool.map(one, files, ids))
    finally:
        launcher.close()
        shutil.rmtree(scratch, ignore_errors=True)
    results.sort(key=lambda r: r.student)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(
        "".join(_csv_line(line) for line in [columns] + [_row(r, assignment) for r in results]), encoding="utf-8"
    )
    os.replace(temporary, out)
    return results
