"""The repository's own rules: notebook pairs in sync, set-up and parameters cells everywhere."""

from pathlib import Path

import nbformat
import pytest
import yaml

from vitcourse import __version__
from vitcourse.notebooks import (
    BASE_EXTRAS,
    COLAB_GPU_METADATA,
    EXTRA_USES,
    PARAMETERS_TAG,
    SETUP_TAG,
    check_pair,
    colab_metadata,
    find_pairs,
    install_spec,
    notebook_extras,
    setup_cell_source,
    sync_pair,
    uses_gpu,
)

ROOT = Path(__file__).resolve().parents[1]
PAIRS = find_pairs(ROOT)


def test_there_are_notebooks():
    assert any(path.parent.name == "book" for path in PAIRS)


@pytest.mark.parametrize("md_path", PAIRS, ids=[str(p.relative_to(ROOT)) for p in PAIRS])
def test_pair_in_sync_with_setup_and_parameters(md_path):
    assert check_pair(md_path, ROOT) == []


@pytest.mark.parametrize("md_path", PAIRS, ids=[str(p.relative_to(ROOT)) for p in PAIRS])
def test_committed_ipynb_carries_setup_parameters_and_colab_metadata(md_path):
    notebook = nbformat.read(md_path.with_suffix(".ipynb"), as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert SETUP_TAG in code[0].metadata["tags"]
    assert code[0].source == setup_cell_source(ROOT, gpu=uses_gpu(notebook), extras=notebook_extras(notebook))
    assert 'if "google.colab" in sys.modules:' in code[0].source
    assert PARAMETERS_TAG in code[1].metadata["tags"]
    assert "PROFILE" in code[1].source and "SEED" in code[1].source
    expected = colab_metadata(notebook)
    assert notebook.metadata.get("colab") == expected["colab"]
    assert notebook.metadata.get("accelerator") == expected.get("accelerator")


CHAPTERS = sorted(ROOT.glob("book/[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("ipynb", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_chapters_run_setup_and_ask_colab_for_a_gpu(ipynb):
    notebook = nbformat.read(ipynb, as_version=4)
    assert uses_gpu(notebook), f"{ipynb.name} never calls vitcourse.runtime.setup(PROFILE, SEED)"
    assert notebook.metadata["accelerator"] == COLAB_GPU_METADATA["accelerator"]
    assert notebook.metadata["colab"] == COLAB_GPU_METADATA["colab"]
    setup = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert "torch.cuda.is_available()" in setup.source


def test_setup_cell_installs_this_version_from_the_configured_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    spec = install_spec(ROOT)
    assert spec == f"vitcourse[hf] @ git+{config['repository']['url']}@v{__version__}"
    assert 'if "google.colab" in sys.modules:' in setup_cell_source(ROOT)


def test_every_toc_entry_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    for name in files:
        assert (ROOT / f"{name}.md").exists(), f"_toc.yml names {name} but {name}.md does not exist"


def test_check_pair_reports_drift(tmp_path):
    root = tmp_path
    (root / "vitcourse").mkdir()
    (root / "vitcourse" / "__init__.py").write_text('__version__ = "9.9.9"\n')
    (root / "_config.yml").write_text("repository:\n  url: https://example.org/fork/vitcourse\n")
    (root / "book").mkdir()
    source = ROOT / "book" / "intro.md"
    target = root / "book" / "intro.md"
    target.write_text(source.read_text())
    problems = check_pair(target, root)
    assert any("set-up cell is out of date" in p for p in problems)
    assert any("no paired intro.ipynb" in p for p in problems)


def _copy_of_chapter(tmp_path):
    """A repository in tmp_path with one chapter pair, synced."""
    (tmp_path / "vitcourse").mkdir()
    (tmp_path / "vitcourse" / "__init__.py").write_text('__version__ = "9.9.9"\n')
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://example.org/fork/vitcourse\n")
    (tmp_path / "book").mkdir()
    target = tmp_path / "book" / "01_demo.md"
    chapter_cell = "\n```{code-cell} ipython3\nrt = setup(PROFILE, SEED)\n```\n"
    target.write_text((ROOT / "book" / "intro.md").read_text() + chapter_cell)
    return target


def test_sync_writes_the_fork_url_gpu_metadata_and_is_idempotent(tmp_path):
    target = _copy_of_chapter(tmp_path)
    assert sync_pair(target, tmp_path) is True
    assert sync_pair(target, tmp_path) is False, "a second sync must change nothing (stable cell ids)"
    assert check_pair(target, tmp_path) == []
    notebook = nbformat.read(target.with_suffix(".ipynb"), as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["accelerator"] == "GPU" and notebook.metadata["colab"]["gpuType"] == "T4"
    setup = notebook.cells[1]
    assert "git+https://example.org/fork/vitcourse@v9.9.9" in setup.source
    assert "torch.cuda.is_available()" in setup.source
    assert "accelerator" not in target.read_text(), "the .md is not what Colab opens; the metadata is ipynb-only"


def test_check_pair_reports_missing_colab_metadata(tmp_path):
    target = _copy_of_chapter(tmp_path)
    sync_pair(target, tmp_path)
    ipynb = target.with_suffix(".ipynb")
    notebook = nbformat.read(ipynb, as_version=4)
    del notebook.metadata["accelerator"]
    nbformat.write(notebook, ipynb)
    assert any("Colab metadata" in p for p in check_pair(target, tmp_path))


@pytest.mark.parametrize("gpu", [False, True])
def test_setup_cell_is_valid_ipython(gpu):
    from IPython.core.inputtransformer2 import TransformerManager

    source = setup_cell_source(ROOT, gpu=gpu)
    python = TransformerManager().transform_cell(source)
    compile(python, "<colab-setup>", "exec")
    assert "get_ipython().run_line_magic('pip'" in python


def test_install_spec_is_a_valid_pip_requirement():
    from packaging.requirements import Requirement

    requirement = Requirement(install_spec(ROOT))
    assert requirement.name == "vitcourse" and requirement.extras == {"hf"}
    assert requirement.url.startswith("git+https://") and requirement.url.endswith(f"@v{__version__}")


def test_install_spec_installs_the_extras_asked_for_and_only_known_ones():
    from packaging.requirements import Requirement

    requirement = Requirement(install_spec(ROOT, extras=("hf", "track")))
    assert requirement.extras == {"hf", "track"}
    with pytest.raises(ValueError, match="EXTRA_USES"):
        install_spec(ROOT, extras=("hf", "mlflow"))
    with pytest.raises(ValueError, match="extras must be some of"):
        install_spec(ROOT, extras=())


def test_every_setup_extra_is_an_extra_of_pyproject():
    import tomllib

    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(BASE_EXTRAS) | set(EXTRA_USES) <= set(optional)
    assert any(dependency.startswith("mlflow") for dependency in optional["track"])


def _notebook(*sources: str) -> nbformat.NotebookNode:
    setup = nbformat.v4.new_code_cell("import mlflow  # the set-up cell does not count", metadata={"tags": [SETUP_TAG]})
    return nbformat.v4.new_notebook(cells=[setup, *(nbformat.v4.new_code_cell(s) for s in sources)])


@pytest.mark.parametrize(
    ("code", "extras"),
    [
        ("import torch\nprint('mlflow')", ("hf",)),
        ("x = 1\nimport mlflow", ("hf", "track")),
        ("from mlflow.tracking import MlflowClient", ("hf", "track")),
        ("from vitcourse.train.tracking import MlflowTracker", ("hf", "track")),
        ('project = new_project("p", workdir)', ("hf", "track")),  # its training tracks with MLflow
    ],
)
def test_notebook_extras_follow_the_code(code, extras):
    assert notebook_extras(_notebook("rt = setup(PROFILE, SEED)", code)) == extras


def test_notebooks_that_track_install_mlflow_and_install_nothing_else_themselves():
    """TP4 and chapters 8/8b track with MLflow: their set-up cell installs ``track``; no
    other cell of any notebook runs its own ``%pip install`` (the extras say what to install)."""
    from vitcourse.notebooks import _read_md

    tracked = {str(md.relative_to(ROOT)) for md in PAIRS if "track" in notebook_extras(_read_md(md))}
    assert {"exercises/tp4/tp4.md", "book/08_proyectos.md", "book/08b_plantilla_mlflow.md"} <= tracked
    assert "book/intro.md" not in tracked
    for md in PAIRS:
        code = [c for c in _read_md(md).cells if c.cell_type == "code"]
        tracks = str(md.relative_to(ROOT)) in tracked
        assert ("vitcourse[hf,track]" in code[0].source) == tracks, md.name
        assert not [c for c in code[1:] if "%pip install" in c.source], f"{md.name} installs packages itself"
    student = nbformat.read(ROOT / "exercises" / "tp4" / "tp4_alumno.ipynb", as_version=4)
    assert "vitcourse[hf,track]" in next(c for c in student.cells if c.cell_type == "code").source


def test_sync_installs_track_where_the_code_tracks(tmp_path):
    target = _copy_of_chapter(tmp_path)
    target.write_text(target.read_text() + "\n```{code-cell} ipython3\nimport mlflow\n```\n")
    sync_pair(target, tmp_path)
    assert check_pair(target, tmp_path) == []
    setup = nbformat.read(target.with_suffix(".ipynb"), as_version=4).cells[1]
    assert '"vitcourse[hf,track] @ git+https://example.org/fork/vitcourse@v9.9.9"' in setup.source
