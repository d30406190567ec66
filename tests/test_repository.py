"""The repository's own rules: notebook pairs in sync, set-up and parameters cells everywhere."""

from pathlib import Path

import nbformat
import pytest
import yaml

from vitcourse import __version__
from vitcourse.notebooks import PARAMETERS_TAG, SETUP_TAG, check_pair, find_pairs, install_spec, setup_cell_source

ROOT = Path(__file__).resolve().parents[1]
PAIRS = find_pairs(ROOT)


def test_there_are_notebooks():
    assert any(path.parent.name == "book" for path in PAIRS)


@pytest.mark.parametrize("md_path", PAIRS, ids=[str(p.relative_to(ROOT)) for p in PAIRS])
def test_pair_in_sync_with_setup_and_parameters(md_path):
    assert check_pair(md_path, ROOT) == []


@pytest.mark.parametrize("md_path", PAIRS, ids=[str(p.relative_to(ROOT)) for p in PAIRS])
def test_committed_ipynb_carries_setup_and_parameters(md_path):
    notebook = nbformat.read(md_path.with_suffix(".ipynb"), as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert SETUP_TAG in code[0].metadata["tags"] and code[0].source == setup_cell_source(ROOT)
    assert PARAMETERS_TAG in code[1].metadata["tags"]


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
