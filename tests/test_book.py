"""vitcourse.book.glue: the numbers it pastes into the prose can be formatted."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from myst_nb.core.variables import format_plain_text

import vitcourse.book as book


@pytest.mark.parametrize("value", [np.float64(0.25), np.float32(0.25), torch.tensor(0.25), np.array(0.25), 0.25])
def test_scalars_are_glued_as_plain_numbers(monkeypatch, value):
    stored = {}
    monkeypatch.setattr("myst_nb.glue", lambda name, v, display=False: stored.update({name: v}))
    assert book.glue("share", value) is value  # the caller gets its own object back
    glued = stored["share"]
    assert type(glued) is float
    assert format_plain_text(repr(glued), ".0%") == "25%"  # what {glue:text}`share:.0%` renders


def test_non_scalars_are_glued_unchanged(monkeypatch):
    stored = {}
    monkeypatch.setattr("myst_nb.glue", lambda name, v, display=False: stored.update({name: v}))
    table = np.arange(3)
    book.glue("table", table)
    assert stored["table"] is table


def test_repository_file_in_a_checkout(tmp_path):
    (tmp_path / "_config.yml").write_text("title: x\n")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    target = tmp_path / "benchmarks" / "results" / "r.json"
    target.write_text("{}")
    assert book.repository_file("benchmarks/results/r.json", root=tmp_path) == target


def test_repository_file_url_is_the_installed_commit():
    direct_url = {"url": "https://github.com/ceia-vit/vitcourse", "vcs_info": {"vcs": "git", "commit_id": "abc123"}}
    assert book._raw_url(direct_url, "benchmarks/results/r.json") == (
        "https://raw.githubusercontent.com/ceia-vit/vitcourse/abc123/benchmarks/results/r.json"
    )
    with pytest.raises(FileNotFoundError, match="open this notebook from a clone of the repository"):
        book._raw_url({"url": "file:///work/main", "dir_info": {"editable": True}}, "benchmarks/results/r.json")


def test_named_figure_cells_do_not_end_with_a_displayed_value():
    """A figure cell whose last line returns a value (e.g. ``glue(...)``) gets a second
    output with the figure's name: Sphinx then fails on a duplicate target."""
    from vitcourse.bookexec import pages, read_page

    offenders = []
    for page in pages(Path(__file__).resolve().parents[1]):
        for cell in read_page(page).cells:
            figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
            if cell.cell_type != "code" or "name" not in figure:
                continue
            code = "\n".join(
                line for line in cell.source.splitlines() if not line.lstrip().startswith("%")
            )
            body = ast.parse(code).body
            last = body[-1] if body else None
            ends_quiet = cell.source.rstrip().endswith(";")
            if isinstance(last, ast.Expr) and not ends_quiet:
                called = last.value.func if isinstance(last.value, ast.Call) else None
                name = getattr(called, "id", getattr(called, "attr", ""))
                if name == "glue":
                    offenders.append(f"{page.name}: {figure['name']}")
    assert not offenders, f"end these figure cells with ';' (glue returns its value): {offenders}"
