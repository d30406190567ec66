"""Batch grading: 24 submissions of the demo TP, every kind of hostile one, graded once.

Grading a submission costs a confined kernel and one or two confined test processes
(each imports torch), a few seconds on 2 cores, so one batch serves every scenario: a
test per scenario reads its row, its feedback file and its executed notebook (two scenarios
that cannot hide each other share a submission: writing outside and megabytes of output). The
determinism test's second grading of three of the files runs at the same time, as a batch of
its own.
"""

import csv
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from vitcourse.cli import main as cli_main
from vitcourse.grading import grader, isolation
from vitcourse.grading.grader import GradeOptions, SubmissionResult, grade, student_ids
from vitcourse.grading.isolation import Limits
from vitcourse.grading.verify import solution_problems, student_problems

import grading_demo as demo
from grading_demo import (
    ASSIGNMENT,
    COUNTS_OK,
    DEMO,
    NORMALIZE_IGNORES_EPS,
    NORMALIZE_LAYER_NORM,
    NORMALIZE_LOOPS,
    NORMALIZE_OK,
    SCALE_NOT_A_PARAMETER,
    SCALE_OK,
    add_cell,
    replace_cell,
    submission,
    write,
)

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

if isolation.problem() and os.environ.get("VITCOURSE_REQUIRE_ISOLATION") != "1":
    pytest.skip(f"no isolation here: {isolation.problem()}", allow_module_level=True)

# A whole notebook run stops at 45 s (the slow one reaches it), a cell at 20 s, a test at 5 s.
OPTIONS = GradeOptions(timeout=45, cell_timeout=20, test_timeout=5, workers=2, limits=Limits(processes=96, file_mb=64))
PRIVATE_MARK = "MARCA-PRIVADA-5113"
TEACHER_MARK = "CLAVE-DEL-DOCENTE-93517"
PRIVATE_TEST = f"""
# {PRIVATE_MARK}: nothing of this file may reach a student.
import torch
from vitcourse.grading import get_part

normalize = get_part("tpdemo.normalize")


@normalize.test("Respeta eps", hint="Usá el argumento eps, no una constante ({PRIVATE_MARK}).")
def respects_eps(fn):
    \"\"\"{PRIVATE_MARK}\"\"\"
    return {{"salida": fn(torch.randn(3, 4), eps=10.0)}}
"""

TAMPER = """
import vitcourse.grading
import vitcourse.grading.checking
import vitcourse.grading.compare


def check(*args, **kwargs):
    print("✔ todo correcto: 10/10")


vitcourse.grading.check = check
vitcourse.grading.compare.compare = lambda *args, **kwargs: None
vitcourse.grading.checking.compare = lambda *args, **kwargs: None
torch.allclose = lambda *args, **kwargs: True
torch.isclose = lambda a, b, **kwargs: torch.ones_like(a, dtype=torch.bool)


def normalize(x, eps=1e-5):
    import vitcourse.grading.compare as compare  # patched again where the tests run, at call time

    compare.compare = lambda *args, **kwargs: None
    return x.clone()
"""
COPY_REFERENCE_NORMALIZE = """
import tpdemo_checks


def normalize(x, eps=1e-5):
    return tpdemo_checks.normalize(x, eps)
"""
COPY_REFERENCE_SCALE = """
from tpdemo_checks import Scale as ReferenceScale


class Scale(ReferenceScale):
    pass
"""
SCALE_EXITS = """
import os


class Scale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        os._exit(3)
"""
LOUD = """
for i in range(20_000):
    print("ruido " * 40)
print("y" * 3_000_000)
"""
STUBBORN = (
    "import time\n\nwhile True:\n    try:\n        time.sleep(0.2)\n    except KeyboardInterrupt:\n        pass\n"
)
SLOW = "import time\n\ntime.sleep(16)\n"
# --- hostile submissions: each tries, from its notebook and from the definitions the tests call
CONNECTS = """
import socket
try:
    with socket.create_connection(("127.0.0.1", {port}), timeout=3) as connection:
        connection.sendall(b"hola desde el notebook")
    print("conectado")
except OSError as error:
    print("sin red:", type(error).__name__)
    raise
"""
NORMALIZE_CONNECTS = """
def normalize(x, eps=1e-5):
    import socket

    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=1).sendall(b"hola desde las pruebas")
    except OSError:
        pass
    variance, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
    return (x - mean) * torch.rsqrt(variance + eps)
"""
READS = """
from pathlib import Path

for path in [{secret!r}, {other!r}, "/root/.bash_history", "/etc/pip.conf", "/etc/shadow"]:
    try:
        print(Path(path).read_text()[:200])
    except OSError as error:
        print(type(error).__name__, path)
raise RuntimeError(Path({secret!r}).read_text())
"""
NORMALIZE_READS = """
def normalize(x, eps=1e-5):
    from pathlib import Path

    raise RuntimeError(Path({secret!r}).read_text())
"""
WRITES = """
from pathlib import Path

for path in [{target!r}, "/tmp/vitcourse-escrito.txt", {home!r}]:
    try:
        Path(path).write_text("escrito por la entrega")
        print("escribí", path)
    except OSError as error:
        print(type(error).__name__, path)
Path("en_mi_carpeta.txt").write_text("esto sí")
"""
NORMALIZE_WRITES = """
def normalize(x, eps=1e-5):
    from pathlib import Path

    try:
        Path({target!r}).write_text("escrito por las pruebas")
    except OSError:
        pass
    variance, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
    return (x - mean) * torch.rsqrt(variance + eps)
"""
FORKS = """
import os
import time

children = 0
try:
    for _ in range(1000):
        if os.fork() == 0:
            time.sleep(1)
            os._exit(0)
        children += 1
finally:
    print("procesos creados:", children)
    for _ in range(children):
        os.wait()
"""
HOARDS_MEMORY = "hoard = bytearray(64 * 2**30)"
WRITES_HUGE_FILE = 'open("enorme.bin", "wb").write(bytes(100 * 2**20))'
SPIES = """
import glob
from pathlib import Path

import vitcourse.grading.registry as registry

print(sorted(glob.glob({private!r} + "/*")))
print([t.id for a in registry._ASSIGNMENTS.values() for p in a.parts for t in p.tests if t.private])
print(Path({private!r}, "tpdemo_privados.py").read_text())
"""
NORMALIZE_SPIES = """
def normalize(x, eps=1e-5):
    import glob
    import inspect

    seen = []
    for frame in inspect.stack():
        try:
            seen.append(inspect.getsource(frame.frame))
        except (OSError, TypeError):
            pass
    for path in glob.glob({private!r} + "/*.py") + glob.glob("/tmp/*/private-tests/*.py"):
        seen.append(open(path).read())
    text = "\\n".join(seen)
    if "MARCA" in text:
        raise RuntimeError(text[-3000:])
    variance, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
    return (x - mean) * torch.rsqrt(variance + eps)
"""


class Listener:
    """A TCP server on 127.0.0.1 that counts who reached it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                self.received.append(connection.recv(1024))


def _ok(**code) -> nbformat.NotebookNode:
    return submission(**{"normalize": NORMALIZE_OK, "Scale": SCALE_OK, "counts": COUNTS_OK, **code})


def _submissions(root: Path, port: int, private: Path) -> list[Path]:
    """The 24 files of the batch: every scenario, hostile ones included, in one folder."""
    folder = root / "entregas"
    folder.mkdir()
    secret = root / "secreto_del_docente.txt"
    secret.write_text(f"{TEACHER_MARK}: la clave del docente\n", encoding="utf-8")
    target = root / "escrito_por_la_entrega.txt"
    other = folder / "solucion.ipynb"
    files = [
        # the longest first: three cells of 16 s pass the 45 s of the whole run
        write(
            add_cell(add_cell(add_cell(_ok(), SLOW, "rt = setup"), SLOW, "rt = setup"), SLOW, "rt = setup"),
            folder / "lento.ipynb",
        ),
        write(add_cell(_ok(), STUBBORN, "rt = setup"), folder / "terco.ipynb"),
        write(
            replace_cell(_ok(normalize=NORMALIZE_LOOPS), "normalize(torch.tensor", None),
            folder / "bucle_infinito.ipynb",
        ),
        write(nbformat.read(DEMO / "tpdemo.ipynb", as_version=4), other),
        write(demo.student_notebook(), folder / "alumno.ipynb"),
        write(_ok(normalize=NORMALIZE_LAYER_NORM), folder / "pérez_josé.ipynb"),
        write(submission(Scale=SCALE_NOT_A_PARAMETER, counts=COUNTS_OK), folder / "parcial.ipynb"),
        write(_ok(normalize=NORMALIZE_IGNORES_EPS), folder / "ignora_eps.ipynb"),
        write(_ok(Scale=SCALE_OK + "\nScale(3)(torch.ones(2, 4))\n"), folder / "falla_en_el_medio.ipynb"),
        write(
            _ok(normalize=TAMPER, Scale=SCALE_NOT_A_PARAMETER, counts="counts = torch.zeros(5)"),
            folder / "tramposo.ipynb",
        ),
        write(_ok(normalize=COPY_REFERENCE_NORMALIZE, Scale=COPY_REFERENCE_SCALE), folder / "copia_referencia.ipynb"),
        write(_ok(Scale="class Scale(nn.Module):\n    def __init__(self, dim)\n"), folder / "sintaxis.ipynb"),
        write(_ok(Scale=SCALE_EXITS), folder / "sale_del_proceso.ipynb"),
        write(replace_cell(_ok(counts=None), "int(counts.argmax())", None), folder / "sin_counts.ipynb"),
        write(
            add_cell(_ok(normalize=NORMALIZE_CONNECTS.format(port=port)), CONNECTS.format(port=port), "rt = setup"),
            folder / "conecta.ipynb",
        ),
        write(
            add_cell(
                _ok(normalize=NORMALIZE_READS.format(secret=str(secret))),
                READS.format(secret=str(secret), other=str(other)),
                "rt = setup",
            ),
            folder / "lee_afuera.ipynb",
        ),
        write(  # then megabytes of output, after what the writes printed
            add_cell(
                add_cell(_ok(normalize=NORMALIZE_WRITES.format(target=str(target))), LOUD, "rt = setup"),
                WRITES.format(target=str(target), home=str(Path.home() / "escrito_por_la_entrega.txt")),
                "rt = setup",
            ),
            folder / "escribe_afuera.ipynb",
        ),
        write(
            add_cell(
                add_cell(add_cell(_ok(), WRITES_HUGE_FILE, "rt = setup"), HOARDS_MEMORY, "rt = setup"),
                FORKS,
                "rt = setup",
            ),
            folder / "acapara.ipynb",
        ),
        write(
            add_cell(
                _ok(normalize=NORMALIZE_SPIES.format(private=str(private))),
                SPIES.format(private=str(private)),
                "rt = setup",
            ),
            folder / "espia.ipynb",
        ),
    ]
    wrong_tp = _ok()
    wrong_tp.metadata["vitcourse"]["tp"] = "tp9"
    files.append(write(wrong_tp, folder / "otro_tp.ipynb"))
    (folder / "no_es_json.ipynb").write_text('{"cells": [ esto no es JSON', encoding="utf-8")
    (folder / "no_es_notebook.ipynb").write_text('{"hola": 1}', encoding="utf-8")
    (folder / "binario.ipynb").write_bytes(bytes(range(256)) * 4)
    write(nbformat.v4.new_notebook(), folder / "vacio.ipynb")
    files += [folder / name for name in ("no_es_json.ipynb", "no_es_notebook.ipynb", "binario.ipynb", "vacio.ipynb")]
    assert len(files) == 24
    return files


def _position(contains: str) -> int:
    """The position (from 1) of the student notebook's first cell containing ``contains``."""
    return next(i for i, cell in enumerate(demo.student_notebook().cells, 1) if contains in cell.source)


SETUP_CELL, SCALE_CELL = _position("rt = setup"), _position("class Scale(")
# Graded with the instructor's private tests (each of these runs a second, private sandbox).
WITH_PRIVATE_TESTS = ("pérez_josé", "ignora_eps", "espia")


# Graded a second time, in a batch of their own, for the determinism test.
RERUN = ("parcial", "tramposo", "binario")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade the 24 submissions once (three of them with private tests), and three of them again.

    The three batches run at the same time, as an instructor's concurrent batches would: the
    slow and stuck submissions mostly sleep, and the other batches use those cores. Every
    test below reads the results.
    """
    root = tmp_path_factory.mktemp("grading")
    private = root / "privados"
    private.mkdir()
    (private / "tpdemo_privados.py").write_text(PRIVATE_TEST, encoding="utf-8")
    listener = Listener()
    files = _submissions(root, listener.port, private)
    originals = {path: path.read_bytes() for path in files}
    scratch = root / "scratch"
    scratch.mkdir()
    feedback = root / "devoluciones"
    options = GradeOptions(**{**OPTIONS.__dict__, "scratch": scratch, "feedback_dir": feedback})
    one_at_a_time = {**options.__dict__, "workers": 1}
    with_private = GradeOptions(**{**one_at_a_time, "private_tests": private})
    again = GradeOptions(**{**one_at_a_time, "feedback_dir": root / "rerun" / "devoluciones"})
    batches = {  # name: (files, options, csv)
        "public": ([f for f in files if f.stem not in WITH_PRIVATE_TESTS], options, root / "notas.csv"),
        "private": ([f for f in files if f.stem in WITH_PRIVATE_TESTS], with_private, root / "notas_privados.csv"),
        "rerun": ([f for f in files if f.stem in RERUN], again, root / "rerun" / "notas.csv"),
    }
    logs = {name: [] for name in batches}
    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        running = {
            name: pool.submit(grade, DEMO, chosen, table, how, log=logs[name].append)
            for name, (chosen, how, table) in batches.items()
        }
        results = {name: future.result() for name, future in running.items()}
    rows = [
        row
        for table in ("notas.csv", "notas_privados.csv")
        for row in csv.DictReader((root / table).open(encoding="utf-8"))
    ]
    return {
        "root": root,
        "files": files,
        "originals": originals,
        "options": options,
        "log": logs["public"] + logs["private"],
        "listener": listener,
        "results": {r.student: r for r in results["public"] + results["private"]},
        "csv": rows,
        "feedback": feedback,
        "rerun": results["rerun"],
    }


def _scores(result: SubmissionResult) -> dict[str, float]:
    return {part.key.split(".")[1]: part.score for part in result.parts}


def _statuses(result: SubmissionResult, part: str) -> list[str]:
    return [t.status for p in result.parts if p.key == f"tpdemo.{part}" for t in p.tests]


def _cell_errors(result: SubmissionResult) -> list[str]:
    return [c.get("ename", "") for c in result.cells if c["status"] == "error"]


def _everything_written_for(batch, student: str) -> str:
    folder = batch["feedback"]
    return "".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob(f"{student}.*")))


def test_every_submission_has_a_row_and_a_feedback_file(batch):
    assert len(batch["csv"]) == 24
    assert sorted(row["student"] for row in batch["csv"]) == sorted(batch["results"])
    assert list(batch["csv"][0]) == [
        "student",
        "status",
        "tpdemo.normalize",
        "tpdemo.scale",
        "tpdemo.counts",
        "tpdemo.answer",
        "total",
        "seconds",
        "detail",
        "file",
        "sha256",
    ]
    for student in batch["results"]:
        assert (batch["feedback"] / f"{student}.md").exists()
    assert all(row["tpdemo.answer"] == "" for row in batch["csv"])  # graded by hand
    assert "(0 private tests)" in batch["log"][0] and "each in its own sandbox" in batch["log"][0]
    assert any("(1 private tests)" in line for line in batch["log"])


def test_originals_are_never_modified(batch):
    for path, content in batch["originals"].items():
        assert path.read_bytes() == content


def test_solution_gets_everything_and_student_notebook_nothing(batch):
    solution, student = batch["results"]["solucion"], batch["results"]["alumno"]
    assert (solution.status, solution.total) == ("ok", 8)
    assert (student.status, student.total) == ("partial", 0)
    feedback = batch["feedback"]
    assert solution_problems(solution, nbformat.read(feedback / "solucion.ipynb", as_version=4), ASSIGNMENT) == []
    assert (
        student_problems(
            student, nbformat.read(feedback / "alumno.ipynb", as_version=4), demo.student_notebook(), ASSIGNMENT
        )
        == []
    )


def test_a_correct_submission_written_differently_with_a_unicode_name(batch):
    result = batch["results"]["pérez_josé"]
    assert (result.status, result.total) == ("ok", 8), result.detail
    assert _statuses(result, "normalize") == ["pass"] * 4  # the private test too
    row = next(r for r in batch["csv"] if r["student"] == "pérez_josé")
    assert row["file"] == "pérez_josé.ipynb" and row["total"] == "8"
    text = (batch["feedback"] / "pérez_josé.md").read_text(encoding="utf-8")
    assert text.startswith("# TP de prueba: normalizar, escalar y contar: devolución de pérez_josé")


def test_partial_credit_per_part(batch):
    result = batch["results"]["parcial"]  # normalize left as the stub: its demo cell fails, that's expected
    assert result.status == "partial"
    assert _scores(result) == {"normalize": 0, "scale": 0.75, "counts": 2}
    assert _statuses(result, "scale") == ["fail", "pass", "fail", "error"]
    assert _statuses(result, "normalize") == ["pending"] * 3


def test_private_tests_count_and_show_only_their_name_and_verdict(batch):
    result = batch["results"]["ignora_eps"]
    assert _statuses(result, "normalize") == ["pass", "pass", "pass", "fail"]  # only the private test fails
    assert result.status == "partial" and _scores(result)["normalize"] == 2.4  # 3 points * 4/5 of the weight
    feedback = (batch["feedback"] / "ignora_eps.md").read_text(encoding="utf-8")
    assert "- ✘ **Respeta eps** *(test privado)*: incorrecto.\n" in feedback
    private = next(t for p in result.parts for t in p.tests if t.private)
    assert (private.expected, private.got, private.hint) == ("", "", "")
    assert "Usá el argumento eps" not in feedback and "y 1 privados" in feedback


def test_a_cell_that_raises_does_not_stop_later_parts(batch):
    result = batch["results"]["falla_en_el_medio"]
    assert result.status == "error" and result.detail.startswith(f"celda {SCALE_CELL}: RuntimeError")
    assert _scores(result) == {"normalize": 3, "scale": 3, "counts": 2}  # counts came after the failing cell
    later = [c["status"] for c in result.cells if c["cell"] > SCALE_CELL]
    assert later and later == ["ok"] * len(later)


def test_an_infinite_loop_times_out_and_the_rest_is_graded(batch):
    result = batch["results"]["bucle_infinito"]
    assert result.status == "timeout"
    assert _statuses(result, "normalize") == ["timeout"] * 3
    assert _scores(result) == {"normalize": 0, "scale": 3, "counts": 2}
    assert any(c["status"] == "timeout" for c in result.cells)
    assert "superó el tiempo límite" in (batch["feedback"] / "bucle_infinito.md").read_text(encoding="utf-8")


def test_a_whole_run_past_its_time_is_stopped(batch):
    result = batch["results"]["lento"]
    assert result.status == "timeout" and "límite total de 45 s (celda " in result.detail, result.detail
    cut = next(cell["cell"] for cell in result.cells if cell["status"] == "timeout")
    assert SETUP_CELL < cut <= SETUP_CELL + 3  # one of its three slow cells, depending on how long the first took
    assert _scores(result)["normalize"] == 3 and _scores(result)["scale"] == 3  # definitions are still graded
    assert _statuses(result, "counts") == ["missing"]  # the notebook never reached it


def test_a_cell_that_ignores_its_interrupt_stops_the_run(batch):
    result = batch["results"]["terco"]  # it swallows every KeyboardInterrupt
    assert result.status == "timeout" and "no respondió a la interrupción" in result.detail, result.detail
    assert _scores(result)["normalize"] == 3 and _scores(result)["scale"] == 3
    assert _statuses(result, "counts") == ["missing"]
    assert [c["status"] for c in result.cells].count("timeout") == 1  # nothing else was tried in that kernel


def test_tampering_with_check_torch_or_vitcourse_does_not_help(batch):
    result = batch["results"]["tramposo"]
    assert _statuses(result, "normalize")[:3] == ["pass", "fail", "fail"]  # x.clone(): right shape, wrong values
    assert _scores(result) == {"normalize": 0.75, "scale": 0.75, "counts": 0}
    executed = (batch["feedback"] / "tramposo.ipynb").read_text(encoding="utf-8")
    assert "todo correcto: 10/10" in executed  # the notebook fooled itself, not the grader


def test_using_the_reference_does_not_count(batch):
    result = batch["results"]["copia_referencia"]
    assert _statuses(result, "normalize") == ["imported"] * 3 and _statuses(result, "scale") == ["imported"] * 4
    assert _scores(result) == {"normalize": 0, "scale": 0, "counts": 2}


def test_megabytes_of_output_are_cut(batch):
    result = batch["results"]["escribe_afuera"]  # its writes first, then about 8 MB of prints
    assert (result.status, result.total) == ("ok", 8) and result.truncated_output
    assert (batch["feedback"] / "escribe_afuera.ipynb").stat().st_size < 4 * 2**20


def test_syntax_error_in_one_cell(batch):
    result = batch["results"]["sintaxis"]
    assert result.status == "error" and "SyntaxError" in result.detail
    assert _scores(result) == {"normalize": 3, "scale": 0, "counts": 2}
    assert _statuses(result, "scale") == ["missing"] * 4


def test_code_that_kills_its_process(batch):
    result = batch["results"]["sale_del_proceso"]
    assert result.status == "error" and "KernelDied" in result.detail  # the kernel died in the check cell
    assert _statuses(result, "scale") == ["pass", "error", "error", "error"]  # the sandbox survived each exit
    assert _scores(result)["normalize"] == 3 and _scores(result)["counts"] == 0  # counts' cells never ran


def test_missing_value(batch):
    result = batch["results"]["sin_counts"]  # the counts cell was deleted: check(..., counts) fails
    assert _statuses(result, "counts") == ["missing"] and _scores(result)["scale"] == 3
    assert result.status == "error" and "NameError: name 'counts' is not defined" in result.detail


def test_invalid_files(batch):
    details = {
        student: batch["results"][student].detail
        for student in ("no_es_json", "no_es_notebook", "binario", "vacio", "otro_tp")
    }
    for student in details:
        assert (batch["results"][student].status, batch["results"][student].total) == ("invalid", 0)
    assert "no es JSON válido" in details["no_es_json"]
    assert "no un notebook" in details["no_es_notebook"]
    assert "UTF-8" in details["binario"]
    assert "vacío" in details["vacio"]
    assert "tp9" in details["otro_tp"]


# --------------------------------------------------------------------------- hostile submissions


def test_no_network_not_even_the_graders_loopback(batch):
    result = batch["results"]["conecta"]
    assert batch["listener"].received == []  # neither the notebook nor the tests reached the server
    assert result.status == "error" and "ConnectionRefusedError" in result.detail
    assert _scores(result) == {"normalize": 3, "scale": 3, "counts": 2}


def test_files_outside_its_folder_cannot_be_read(batch):
    result = batch["results"]["lee_afuera"]
    assert "FileNotFoundError" in result.detail  # the secret is not there at all
    assert _statuses(result, "normalize") == ["error"] * 3
    assert _scores(result) == {"normalize": 0, "scale": 3, "counts": 2}
    written = _everything_written_for(batch, "lee_afuera")
    assert TEACHER_MARK not in written
    assert "Standardise the last dimension" not in written  # another student's notebook (the solution)


def test_nothing_outside_its_folder_can_be_written(batch):
    result = batch["results"]["escribe_afuera"]
    assert (result.status, result.total) == ("ok", 8), result.detail
    assert not (batch["root"] / "escrito_por_la_entrega.txt").exists()
    assert not Path("/tmp/vitcourse-escrito.txt").exists()
    assert not (Path.home() / "escrito_por_la_entrega.txt").exists()
    executed = (batch["feedback"] / "escribe_afuera.ipynb").read_text(encoding="utf-8")
    assert "escribí /tmp/vitcourse-escrito.txt" in executed  # its own /tmp, gone with the sandbox


def test_processes_memory_and_file_size_are_limited(batch):
    result = batch["results"]["acapara"]
    errors = _cell_errors(result)
    assert errors[:3] == ["BlockingIOError", "MemoryError", "OSError"], result.cells
    assert "procesos creados:" in (batch["feedback"] / "acapara.ipynb").read_text(encoding="utf-8")
    assert _scores(result) == {"normalize": 3, "scale": 3, "counts": 2}  # the rest ran and was graded


def test_private_tests_cannot_be_read_and_never_reach_a_student(batch):
    result = batch["results"]["espia"]
    assert _statuses(result, "normalize") == ["pass", "pass", "pass", "error"]  # it found them only in the private run
    assert result.status == "error" and "FileNotFoundError" in result.detail
    for path in batch["feedback"].iterdir():
        assert PRIVATE_MARK not in path.read_text(encoding="utf-8"), path.name
    for table in ("notas.csv", "notas_privados.csv"):
        assert PRIVATE_MARK not in (batch["root"] / table).read_text(encoding="utf-8")


def test_no_process_is_left_behind(batch):
    scratch = str(batch["options"].scratch)
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(scratch):
                leftovers.append(pid)
        except OSError:
            continue
    assert leftovers == [] and list(batch["options"].scratch.iterdir()) == []


def test_a_rerun_gives_the_same_rows_and_feedback(batch):
    rerun = list(csv.DictReader((batch["root"] / "rerun" / "notas.csv").open(encoding="utf-8")))
    first = [row for row in batch["csv"] if row["student"] in RERUN]
    for row in first + rerun:
        row.pop("seconds")
    assert len(rerun) == len(RERUN) and rerun == first
    for result in batch["rerun"]:
        assert (batch["root"] / "rerun" / "devoluciones" / f"{result.student}.md").read_text(encoding="utf-8") == (
            batch["feedback"] / f"{result.student}.md"
        ).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- without kernels


def test_student_ids_are_unique_and_normalised():
    paths = [Path("a/pe\u0301rez.ipynb"), Path("b/pérez.ipynb"), Path("x.tar.ipynb"), Path("sin_extension")]
    assert student_ids(paths) == ["pérez", "pérez~2", "x.tar", "sin_extension"]


def test_a_crash_keeps_every_row_written_before_it(tmp_path):
    """The grader's process dies at the third submission: the two rows before it are on disk."""
    script = f"""
import os
from pathlib import Path
from vitcourse.grading import grader

def fake_grade_one(path, student, *args):
    if student == "c":
        os._exit(9)  # the machine dies
    if student == "b":
        raise ValueError("a bug in the grader")
    return grader.SubmissionResult(student=student, file=path.name, status="ok", detail="bien")

grader.grade_one = fake_grade_one
files = [Path({str(tmp_path)!r}) / f"{{name}}.ipynb" for name in "abcd"]
grader.grade({str(DEMO)!r}, files, Path({str(tmp_path)!r}) / "notas.csv", log=lambda line: None)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(grader.__file__).parents[2]), str(DEMO / "checks")])}
    completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert completed.returncode == 9, completed.stderr
    rows = list(csv.DictReader((tmp_path / "notas.csv").open(encoding="utf-8")))
    assert [(r["student"], r["status"]) for r in rows] == [("a", "ok"), ("b", "error")]
    assert "error interno" in rows[1]["detail"]
    assert (tmp_path / "notas_devoluciones" / "a.md").exists() and (tmp_path / "notas_devoluciones" / "b.md").exists()


def test_cli_grade_and_its_refusal_without_isolation(tmp_path, capsys, monkeypatch):
    (tmp_path / "roto.ipynb").write_text("no", encoding="utf-8")
    arguments = ["grade", str(DEMO), str(tmp_path / "roto.ipynb"), "--out", str(tmp_path / "n.csv")]
    assert cli_main([*arguments, "--timeout", "60", "--cell-timeout", "20", "--memory-mb", "2048"]) == 0
    assert "1 rows: 1 invalid" in capsys.readouterr().out
    assert cli_main(["grade", str(DEMO), str(tmp_path / "nada.ipynb"), "--out", str(tmp_path / "m.csv")]) == 2
    capsys.readouterr()
    monkeypatch.setenv("VITCOURSE_BWRAP", str(tmp_path / "no-bwrap"))
    assert cli_main(arguments) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot isolate submissions" in error and "--unsafe-no-isolation" in error
    assert cli_main([*arguments, "--unsafe-no-isolation"]) == 0
    assert "UNCONFINED" in capsys.readouterr().out
