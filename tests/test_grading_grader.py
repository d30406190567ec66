"""Batch grading: 20 mixed submissions of the demo TP graded in one run, then graded again.

One run serves every scenario (a test per scenario reads its row): grading a
submission costs a kernel and a sandbox, a few seconds each on 2 cores.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import grading_demo as demo
import nbformat
import pytest
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

from vitcourse.cli import main as cli_main
from vitcourse.grading import grader
from vitcourse.grading.grader import GradeOptions, SubmissionResult, grade, student_ids
from vitcourse.grading.verify import solution_problems, student_problems

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

OPTIONS = GradeOptions(timeout=120, cell_timeout=15, test_timeout=3, workers=2)
PRIVATE_TEST = """
import torch
from vitcourse.grading import get_part

normalize = get_part("tpdemo.normalize")


@normalize.test("Respeta eps", hint="Usá el argumento eps, no una constante.")
def respects_eps(fn):
    return {"salida": fn(torch.randn(3, 4), eps=10.0)}
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


def _submissions(folder: Path) -> list[Path]:
    """The 20 files of the batch: every scenario of the task, in one folder."""
    folder.mkdir()
    files = [
        write(nbformat.read(DEMO / "tpdemo.ipynb", as_version=4), folder / "solucion.ipynb"),
        write(demo.student_notebook(), folder / "alumno.ipynb"),
        write(submission(normalize=NORMALIZE_OK, Scale=SCALE_OK, counts=COUNTS_OK), folder / "correcto.ipynb"),
        write(
            submission(normalize=NORMALIZE_LAYER_NORM, Scale=SCALE_OK, counts=COUNTS_OK), folder / "pérez_josé.ipynb"
        ),
        write(
            submission(normalize=NORMALIZE_OK, Scale=SCALE_NOT_A_PARAMETER, counts=COUNTS_OK), folder / "parcial.ipynb"
        ),
        write(submission(Scale=SCALE_OK, counts=COUNTS_OK), folder / "parcial_2.ipynb"),
        write(
            submission(normalize=NORMALIZE_IGNORES_EPS, Scale=SCALE_OK, counts=COUNTS_OK), folder / "ignora_eps.ipynb"
        ),
        write(
            submission(normalize=NORMALIZE_OK, Scale=SCALE_OK + "\nScale(3)(torch.ones(2, 4))\n", counts=COUNTS_OK),
            folder / "falla_en_el_medio.ipynb",
        ),
        write(
            replace_cell(
                submission(normalize=NORMALIZE_LOOPS, Scale=SCALE_OK, counts=COUNTS_OK), "normalize(torch.tensor", None
            ),
            folder / "bucle_infinito.ipynb",
        ),
        write(
            submission(normalize=TAMPER, Scale=SCALE_NOT_A_PARAMETER, counts="counts = torch.zeros(5)"),
            folder / "tramposo.ipynb",
        ),
        write(
            submission(normalize=COPY_REFERENCE_NORMALIZE, Scale=COPY_REFERENCE_SCALE, counts=COUNTS_OK),
            folder / "copia_referencia.ipynb",
        ),
        write(
            add_cell(submission(normalize=NORMALIZE_OK, Scale=SCALE_OK, counts=COUNTS_OK), LOUD, "rt = setup"),
            folder / "mucha_salida.ipynb",
        ),
        write(
            submission(
                normalize=NORMALIZE_OK, Scale="class Scale(nn.Module):\n    def __init__(self, dim)\n", counts=COUNTS_OK
            ),
            folder / "sintaxis.ipynb",
        ),
        write(
            submission(normalize=NORMALIZE_OK, Scale=SCALE_EXITS, counts=COUNTS_OK), folder / "sale_del_proceso.ipynb"
        ),
        write(
            replace_cell(submission(normalize=NORMALIZE_OK, Scale=SCALE_OK, counts=None), "int(counts.argmax())", None),
            folder / "sin_counts.ipynb",
        ),
    ]
    other = submission(normalize=NORMALIZE_OK, Scale=SCALE_OK, counts=COUNTS_OK)
    other.metadata["vitcourse"]["tp"] = "tp9"
    files.append(write(other, folder / "otro_tp.ipynb"))
    (folder / "no_es_json.ipynb").write_text('{"cells": [ esto no es JSON', encoding="utf-8")
    (folder / "no_es_notebook.ipynb").write_text('{"hola": 1}', encoding="utf-8")
    (folder / "binario.ipynb").write_bytes(bytes(range(256)) * 4)
    write(nbformat.v4.new_notebook(), folder / "vacio.ipynb")
    files += [folder / name for name in ("no_es_json.ipynb", "no_es_notebook.ipynb", "binario.ipynb", "vacio.ipynb")]
    assert len(files) == 20
    return files


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade the 20 submissions once; every test below reads the results."""
    root = tmp_path_factory.mktemp("grading")
    files = _submissions(root / "entregas")
    originals = {path: path.read_bytes() for path in files}
    private = root / "privados"
    private.mkdir()
    (private / "tpdemo_privados.py").write_text(PRIVATE_TEST, encoding="utf-8")
    options = GradeOptions(**{**OPTIONS.__dict__, "private_tests": private})
    lines: list[str] = []
    results = grade(DEMO, files, root / "notas.csv", options, log=lines.append)
    return {
        "root": root,
        "files": files,
        "originals": originals,
        "options": options,
        "log": lines,
        "results": {r.student: r for r in results},
        "csv": list(csv.DictReader((root / "notas.csv").open(encoding="utf-8"))),
        "feedback": root / "notas_devoluciones",
    }


def _scores(result: SubmissionResult) -> dict[str, float]:
    return {part.key.split(".")[1]: part.score for part in result.parts}


def _statuses(result: SubmissionResult, part: str) -> list[str]:
    return [t.status for p in result.parts if p.key == f"tpdemo.{part}" for t in p.tests]


def test_every_submission_has_a_row_and_a_feedback_file(batch):
    assert len(batch["csv"]) == 20
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


def test_correct_submissions_written_differently(batch):
    for student in ("correcto", "pérez_josé"):
        result = batch["results"][student]
        assert (result.status, result.total) == ("ok", 8), result.detail


def test_unicode_file_name(batch):
    row = next(r for r in batch["csv"] if r["student"] == "pérez_josé")
    assert row["file"] == "pérez_josé.ipynb" and row["total"] == "8"
    text = (batch["feedback"] / "pérez_josé.md").read_text(encoding="utf-8")
    assert text.startswith("# TP de prueba: normalizar, escalar y contar: devolución de pérez_josé")


def test_partial_credit_per_part(batch):
    result = batch["results"]["parcial"]
    assert result.status == "partial"
    assert _scores(result) == {"normalize": 3, "scale": 0.75, "counts": 2}
    assert _statuses(result, "scale") == ["fail", "pass", "fail", "error"]
    unfinished = batch["results"]["parcial_2"]  # normalize left as the stub: its demo cell fails, that's expected
    assert (unfinished.status, _scores(unfinished)) == ("partial", {"normalize": 0, "scale": 3, "counts": 2})
    assert _statuses(unfinished, "normalize") == ["pending"] * 4


def test_private_tests_count_and_are_marked(batch):
    result = batch["results"]["ignora_eps"]
    assert _statuses(result, "normalize") == ["pass", "pass", "pass", "fail"]  # only the private test fails
    assert result.status == "partial" and _scores(result)["normalize"] == 2.4  # 3 points * 4/5 of the weight
    feedback = (batch["feedback"] / "ignora_eps.md").read_text(encoding="utf-8")
    assert "**Respeta eps** *(test privado)*: incorrecto" in feedback
    assert "Usá el argumento eps" in feedback
    assert "y 1 privados" in feedback


def test_a_cell_that_raises_does_not_stop_later_parts(batch):
    result = batch["results"]["falla_en_el_medio"]
    assert result.status == "error" and result.detail.startswith("celda 10: RuntimeError")
    assert _scores(result) == {"normalize": 3, "scale": 3, "counts": 2}  # counts came after the failing cell
    later = [c["status"] for c in result.cells if c["cell"] > 10]
    assert later == ["ok"] * 6


def test_an_infinite_loop_times_out_and_the_rest_is_graded(batch):
    result = batch["results"]["bucle_infinito"]
    assert result.status == "timeout"
    assert _statuses(result, "normalize") == ["timeout"] * 4
    assert _scores(result) == {"normalize": 0, "scale": 3, "counts": 2}
    assert any(c["status"] == "timeout" for c in result.cells)
    assert "superó el tiempo límite" in (batch["feedback"] / "bucle_infinito.md").read_text(encoding="utf-8")


def test_tampering_with_check_torch_or_vitcourse_does_not_help(batch):
    result = batch["results"]["tramposo"]
    assert _statuses(result, "normalize")[:3] == ["pass", "fail", "fail"]  # x.clone(): right shape, wrong values
    assert _scores(result) == {"normalize": 0.6, "scale": 0.75, "counts": 0}
    executed = (batch["feedback"] / "tramposo.ipynb").read_text(encoding="utf-8")
    assert "todo correcto: 10/10" in executed  # the notebook fooled itself, not the grader


def test_using_the_reference_does_not_count(batch):
    result = batch["results"]["copia_referencia"]
    assert _statuses(result, "normalize") == ["imported"] * 4 and _statuses(result, "scale") == ["imported"] * 4
    assert _scores(result) == {"normalize": 0, "scale": 0, "counts": 2}


def test_megabytes_of_output_are_cut(batch):
    result = batch["results"]["mucha_salida"]
    assert (result.status, result.total) == ("ok", 8) and result.truncated_output
    assert (batch["feedback"] / "mucha_salida.ipynb").stat().st_size < 4 * 2**20


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


def test_no_process_is_left_behind(batch):
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if "vitcourse-grade-" in os.readlink(f"/proc/{pid}/cwd"):
                leftovers.append(pid)
        except OSError:
            continue
    assert leftovers == []


def test_a_rerun_gives_the_same_csv(batch, tmp_path):
    again = grade(DEMO, batch["files"], tmp_path / "notas.csv", batch["options"], log=lambda line: None)
    rerun = list(csv.DictReader((tmp_path / "notas.csv").open(encoding="utf-8")))
    for row in batch["csv"] + rerun:
        row.pop("seconds")
    assert rerun == batch["csv"]
    for result in again:
        assert (tmp_path / "notas_devoluciones" / f"{result.student}.md").read_text(encoding="utf-8") == (
            batch["feedback"] / f"{result.student}.md"
        ).read_text(encoding="utf-8")


def test_a_whole_run_past_its_time_is_killed(tmp_path):
    stubborn = (
        "import time\n\nwhile True:\n    try:\n        time.sleep(0.2)\n    except KeyboardInterrupt:\n        pass\n"
    )
    notebook = submission(normalize=NORMALIZE_OK, Scale=SCALE_OK, counts=COUNTS_OK)
    path = write(add_cell(notebook, stubborn, "rt = setup"), tmp_path / "terco.ipynb")
    options = GradeOptions(timeout=30, cell_timeout=8, test_timeout=3)
    (result,) = grade(DEMO, [path], tmp_path / "notas.csv", options, log=lambda line: None)
    assert result.status == "timeout" and "límite total de 30 s" in result.detail
    assert _scores(result)["normalize"] == 3 and _scores(result)["scale"] == 3  # definitions are still graded
    assert _statuses(result, "counts") == ["missing"]  # the notebook never reached it


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
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(grader.__file__).parents[2]), str(DEMO)])}
    completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert completed.returncode == 9, completed.stderr
    rows = list(csv.DictReader((tmp_path / "notas.csv").open(encoding="utf-8")))
    assert [(r["student"], r["status"]) for r in rows] == [("a", "ok"), ("b", "error")]
    assert "error interno" in rows[1]["detail"]
    assert (tmp_path / "notas_devoluciones" / "a.md").exists() and (tmp_path / "notas_devoluciones" / "b.md").exists()


def test_cli_grade(tmp_path, capsys):
    path = write(nbformat.read(DEMO / "tpdemo_alumno.ipynb", as_version=4), tmp_path / "alumno.ipynb")
    (tmp_path / "roto.ipynb").write_text("no", encoding="utf-8")
    code = cli_main(
        [
            "grade",
            str(DEMO),
            str(path),
            str(tmp_path / "roto.ipynb"),
            "--out",
            str(tmp_path / "n.csv"),
            "--timeout",
            "60",
            "--cell-timeout",
            "20",
            "--test-timeout",
            "3",
        ]
    )
    assert code == 0
    assert "2 rows: 1 partial, 1 invalid" in capsys.readouterr().out
    assert cli_main(["grade", str(DEMO), str(tmp_path / "nada.ipynb"), "--out", str(tmp_path / "m.csv")]) == 2
