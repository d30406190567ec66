"""``vitcourse new-project``: the rendered template, its options, and a generated project at work.

The fast tests render the template (Cookiecutter, a fraction of a second) and check what
came out. The slow one does what a student does: install the project into a fresh
virtual environment, run its tests, then ``make all PROFILE=smoke`` (data, train, evaluate,
report) on real images: what the project's own CI workflow runs. It is marked ``slow``
(about a minute of CPU); ``make test`` runs it with the unit tests.

The fresh environment is layered over this one (a ``.pth`` file adds this environment's
``site-packages``) and the project is installed with ``pip install --no-deps
--no-build-isolation -e .``: a plain ``pip install`` would download PyTorch, MLflow and
their dependencies again (gigabytes, and the network). What is checked is what can go
wrong in the project itself: its ``pyproject.toml`` builds and installs, ``src`` is
importable from the new environment, every declared dependency is satisfied there,
and its commands run with that environment's interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import yaml

from vitcourse.cli import main
from vitcourse.course import rules
from vitcourse.course.newproject import NewProjectError, new_project, presentation_outline
from vitcourse.models import create_model

ROOT = Path(__file__).resolve().parents[1]

# The layout of the slide (Cookiecutter Data Science), plus what the template adds.
LAYOUT = [
    "LICENSE",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "requirements.txt",
    "configs/config.yaml",
    "data/raw/.gitkeep",
    "data/interim/.gitkeep",
    "data/processed/.gitkeep",
    "data/external/.gitkeep",
    "docs/index.md",
    "models/.gitkeep",
    "references/README.md",
    "reports/figures/.gitkeep",
    "reports/informe_tecnico.md",
    "reports/presentacion.md",
    "src/__init__.py",
    "src/data/make_dataset.py",
    "src/features/build_features.py",
    "src/models/train_model.py",
    "src/models/predict_model.py",
    "src/visualization/visualize.py",
    "tests/test_pipeline.py",
    ".github/workflows/ci.yml",
    ".gitignore",
]


@pytest.mark.parametrize("model", ["vit", "deit", "swin"])
def test_rendered_project_has_the_layout_and_a_working_model(tmp_path, model):
    project = new_project("mi-proyecto", tmp_path, model=model)
    assert project == tmp_path / "mi-proyecto"
    missing = [path for path in LAYOUT if not (project / path).exists()]
    assert not missing, missing
    assert list((project / "notebooks").glob("1.0-*-exploracion-inicial.ipynb"))
    config = yaml.safe_load((project / "configs" / "config.yaml").read_text())
    assert config["model"]["architecture"] == model
    net = create_model(config["model"]["preset"], **config["model"]["config"]).eval()
    logits, attentions = net(__import__("torch").randn(2, 1, 28, 28), return_attention=True)
    assert logits.shape == (2, 10) and len(attentions) > 0
    leftover = [p for p in project.rglob("*") if p.is_file() and "{{" in p.read_text(errors="ignore")]
    assert not leftover, f"unrendered Jinja in {leftover}"


def test_no_mlflow_leaves_tracking_out(tmp_path):
    project = new_project("sin-mlflow", tmp_path, mlflow=False, dataset="mnist")
    config = yaml.safe_load((project / "configs" / "config.yaml").read_text())
    assert config["tracking"]["mlflow"] is False
    assert config["features"]["flip"] is False  # a mirrored digit is another digit
    assert "mlflow>=" not in (project / "pyproject.toml").read_text()
    assert "mlflow-ui" not in (project / "Makefile").read_text()


def test_report_and_talk_follow_the_current_rules(tmp_path):
    edition = rules.load()
    project = new_project("informe", tmp_path)
    report = (project / "reports" / "informe_tecnico.md").read_text()
    talk = (project / "reports" / "presentacion.md").read_text()
    assert edition.project.due.text() in report
    for criterion in edition.rubric:
        assert criterion.name in report and criterion.name in talk
    outline = presentation_outline(edition)
    assert sum(minutes for _, minutes, *_ in outline) == pytest.approx(edition.project.presentation_minutes)
    assert f"({edition.project.presentation_minutes} minutos)" in talk


def test_template_python_fits_the_book_column():
    template = ROOT / "vitcourse" / "templates" / "project"
    long = [
        f"{path.relative_to(template)}:{number}"
        for path in template.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if len(line) > 88
    ]
    assert not long, long


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["bad/name"], "NAME must start with a letter"),
        (["p", "--model", "resnet"], "--model must be one of vit, deit, swin, clip; got 'resnet'"),
        (["p", "--dataset", "cifar10"], "--dataset must be one of fashion_mnist, mnist; got 'cifar10'"),
        (["p", "--bogus"], "unrecognized arguments: --bogus"),
        (["p", "--model"], "argument --model: expected one argument"),
    ],
)
def test_bad_options_get_one_clear_line(tmp_path, capsys, argv, says):
    try:
        status = main(["new-project", *argv, "-o", str(tmp_path)])
    except SystemExit as exit:  # argparse's own errors (a missing value) exit
        status = exit.code
    assert status == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("vitcourse new-project: error:"), error
    assert says in error[0]
    assert not (tmp_path / "p").exists()


def test_existing_folder_is_not_overwritten(tmp_path, capsys):
    new_project("otra", tmp_path)
    assert main(["new-project", "otra", "-o", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert new_project("otra", tmp_path, overwrite=True) == tmp_path / "otra"


def test_clip_project_builds_clips_image_encoder(tmp_path, monkeypatch):
    try:
        import vitcourse.models.clip  # noqa: F401
    except ImportError:
        with pytest.raises(NewProjectError, match=r"needs vitcourse\.models\.clip .*choose --model vit, deit or swin"):
            new_project("con-clip", tmp_path, model="clip")
        return
    # Chapter 5 landed: the project builds CLIP's image encoder with a head, through its own code.
    project = new_project("con-clip", tmp_path, model="clip")
    config = yaml.safe_load((project / "configs" / "config.yaml").read_text())
    assert config["model"]["architecture"] == "clip" and config["model"]["preset"].startswith("clip_")
    monkeypatch.syspath_prepend(str(project))
    for name in [name for name in sys.modules if name == "src" or name.startswith("src.")]:
        monkeypatch.delitem(sys.modules, name)  # another project's src, from another test
    from src.models.attention import attention_maps
    from src.models.train_model import build_model

    net = build_model(config)
    logits, maps = attention_maps(net, __import__("torch").randn(2, 1, 28, 28))
    assert type(net).__name__ == "CLIPVisionTower"
    assert logits.shape == (2, 10) and maps.shape == (2, 7, 7)
    for name in [name for name in sys.modules if name == "src" or name.startswith("src.")]:
        del sys.modules[name]  # this project's src: gone with its folder


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return seconds, done.stdout + done.stderr


@pytest.mark.slow
def test_generated_project_installs_tests_trains_and_evaluates(tmp_path):
    project = new_project("proyecto-smoke", tmp_path, authors="Prueba Automática")
    venv = tmp_path / "venv"
    times: dict[str, float] = {}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    shared = Path(sysconfig.get_paths()["purelib"]).resolve()
    (site_packages / "_shared_environment.pth").write_text(f"import site; site.addsitedir({str(shared)!r})\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("VIRTUAL_ENV", None)
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps"]
    _run([*install, "--no-build-isolation", "-e", "."], project, env)
    times["install"] = time.perf_counter() - start

    check = (
        "import importlib.metadata as m, json, src\n"
        "from packaging.requirements import Requirement\n"
        "bad = []\n"
        "for text in m.requires('proyecto_smoke') or []:\n"
        "    r = Requirement(text)\n"
        "    if r.marker and not r.marker.evaluate({'extra': ''}): continue\n"
        "    try: v = m.version(r.name)\n"
        "    except m.PackageNotFoundError: bad.append(text); continue\n"
        "    if r.specifier and v not in r.specifier: bad.append(f'{text} (have {v})')\n"
        "print(json.dumps({'src': src.__file__, 'unsatisfied': bad}))\n"
    )
    _, out = _run([str(python), "-c", check], tmp_path, env)
    found = json.loads(out.strip().splitlines()[-1])
    assert Path(found["src"]).resolve() == (project / "src" / "__init__.py").resolve()
    assert found["unsatisfied"] == []

    # What the project's own CI runs after installing: `make test`, then `make all` in smoke,
    # here one target of `all` at a time so that train and evaluate are timed on their own.
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    steps = [step["run"] for step in workflow["jobs"]["test"]["steps"] if "run" in step]
    assert [step for step in steps if step.startswith("make")] == ["make test", "make all PROFILE=smoke"]
    makefile = (project / "Makefile").read_text().splitlines()
    targets = next(line for line in makefile if line.startswith("all:")).split("##")[0].split()[1:]
    assert targets == ["data", "train", "evaluate", "report"]
    make = ["make", f"PYTHON={python}"]
    times["pytest"], _ = _run([*make, "test"], project, env)
    for done, target in enumerate(targets):
        # `make all` makes each prerequisite once: the targets already made are not made again
        # (`train: data` would run make_dataset a second time).
        old = [f"--old-file={previous}" for previous in targets[:done]]
        times[target], _ = _run([*make, *old, target, "PROFILE=smoke"], project, env)
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert metrics["num_test_images"] == 1000 and metrics["profile"] == "smoke"
    assert metrics["accuracy"] > 0.2  # ten classes: chance is 0.1
    assert (project / "mlruns" / "mlflow.db").exists()
    for name in ("data", "train", "evaluate"):
        assert (project / "logs" / f"{name}.log").stat().st_size > 0
    assert (project / "reports" / "results.md").exists()
    assert any((project / "reports" / "figures").glob("*.png"))
    print("\nnew-project in a fresh venv, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()))
    print(f"smoke test accuracy {metrics['accuracy']:.3f}; train + evaluate {times['train'] + times['evaluate']:.1f} s")
