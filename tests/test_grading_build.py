"""One source, two notebooks: stubs, the student notebook, the TP page, no leaked solutions."""

import json
import textwrap
from pathlib import Path

import nbformat
import pytest

from vitcourse.grading.build import (
    ANSWER_PLACEHOLDER,
    book_page,
    build,
    colab_url,
    read_source,
    solution_only_strings,
    student_notebook,
)
from vitcourse.grading.stubs import StubError, stub_cell
from vitcourse.grading.tpdir import load_tp

from grading_demo import ASSIGNMENT, DEMO

ROOT = Path(__file__).resolve().parents[1]
TP_FOLDERS = sorted(path.parent for path in (ROOT / "exercises").glob("*/tp.yml"))


def _stub(code: str) -> str:
    return stub_cell(textwrap.dedent(code).strip() + "\n")


def test_functions_keep_signature_and_docstring():
    stub = _stub(
        '''
        import torch

        # TODO: write f.
        # BEGIN SOLUTION
        import math  # a hint the student should not get

        @torch.no_grad()
        def f(x: torch.Tensor,
              scale: float = 2.0) -> torch.Tensor:  # multi-line signature
            """Scale x."""
            # secret comment
            return x * scale * math.pi
        # END SOLUTION
        '''
    )
    assert stub == textwrap.dedent(
        '''\
        import torch

        # TODO: write f.
        @torch.no_grad()
        def f(x: torch.Tensor,
              scale: float = 2.0) -> torch.Tensor:
            """Scale x."""
            raise NotImplementedError("f: todavía no implementado (ver el TODO)")
        '''
    )


def test_classes_keep_their_methods_as_stubs():
    stub = _stub(
        '''
        # TODO: write the module.
        # BEGIN SOLUTION
        class Layer(nn.Module):
            """A layer."""

            size = 3

            def __init__(self, dim):
                super().__init__()
                self.w = nn.Parameter(torch.ones(dim))

            @property
            def dim(self): return self.w.shape[0]

            def forward(self, x):
                """x is (B, D)."""
                return x * self.w
        # END SOLUTION
        '''
    )
    namespace = {}
    exec("import torch\nfrom torch import nn\n" + stub, namespace)  # noqa: S102
    with pytest.raises(NotImplementedError, match="Layer.__init__"):
        namespace["Layer"](3)
    assert namespace["Layer"].__doc__ == "A layer." and "self.w" not in stub and "size = 3" not in stub
    assert namespace["Layer"].forward.__doc__ == "x is (B, D)."


def test_assignments_become_ellipsis_and_other_statements_go():
    stub = _stub(
        """
        # TODO: choose the grid and compute the counts.
        # BEGIN SOLUTION
        PATCH_SIZES: list[int] = [8, 16]
        counts, total = torch.bincount(data), 40
        print(counts)
        # END SOLUTION
        print("after")
        """
    )
    assert stub.splitlines() == [
        "# TODO: choose the grid and compute the counts.",
        "PATCH_SIZES = ...  # tu código",
        "counts = ...  # tu código",
        "total = ...  # tu código",
        'print("after")',
    ]


def test_a_region_inside_a_function_becomes_one_raise():
    stub = _stub(
        """
        class Block(nn.Module):
            def forward(self, x):
                y = self.norm(x)
                # TODO: add the residual.
                # BEGIN SOLUTION
                y = y + x
                return y
                # END SOLUTION
        """
    )
    # One raise, split over lines because the book shows code at most 88 characters wide.
    assert stub.splitlines()[-4:] == [
        "        raise NotImplementedError(",
        '            "Block.forward: "',
        '            "todavía no implementado (ver el TODO)"',
        "        )",
    ]
    assert "y + x" not in stub


def test_magics_are_fine():
    assert "%matplotlib inline" in _stub("%matplotlib inline\n# TODO: x\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION")


@pytest.mark.parametrize(
    "code, message",
    [
        ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION", "TODO"),
        ("# TODO: a\n# BEGIN SOLUTION\nx = 1", "never closed"),
        ("# END SOLUTION", "without a BEGIN"),
        ("# TODO: a\n# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "inside another"),
        ("if True:\n    # TODO: a\n    # BEGIN SOLUTION\n    x = 1\n    # END SOLUTION", None),
        ("for i in range(3):\n# TODO: a\n# BEGIN SOLUTION\n    x = 1\n# END SOLUTION", "not valid Python"),
    ],
)
def test_broken_sources_are_refused(code, message):
    if message is None:  # a region that is a whole block body is fine: it becomes a raise
        assert "raise NotImplementedError" in stub_cell(code)
        return
    with pytest.raises(StubError, match=message):
        stub_cell(code)


def test_the_demo_student_notebook_is_up_to_date():
    assert build(DEMO, check=True) == []


@pytest.mark.parametrize("folder", TP_FOLDERS, ids=[p.name for p in TP_FOLDERS])
def test_every_tp_is_up_to_date(folder):
    assert build(folder, check=True) == [], "run `make tps` and commit the result"


def test_student_notebook_replaces_solutions_and_keeps_the_rest():
    tp = load_tp(DEMO)
    source = read_source(tp)
    student = student_notebook(source, tp)
    assert len(student.cells) == len(source.cells)
    assert student.metadata["vitcourse"]["tp"] == "tpdemo"
    for solved, given in zip(source.cells, student.cells):
        tags = solved.metadata.get("tags", [])
        if "solution" not in tags:
            assert given.source == solved.source and given.cell_type == solved.cell_type
        elif solved.cell_type == "markdown":
            assert given.source == ANSWER_PLACEHOLDER and given.metadata["tags"] == ["answer"]
        else:
            assert "# TODO" in given.source and "BEGIN SOLUTION" not in given.source
    assert nbformat.writes(student) == nbformat.writes(student_notebook(source, tp))  # byte-identical rebuilds


def test_no_solution_string_reaches_the_student_notebook():
    tp = load_tp(DEMO)
    secrets = solution_only_strings(read_source(tp))
    assert len(secrets) >= 5  # the test is only as good as what it looks for
    assert "counts = torch.bincount(data)" in secrets
    assert not [s for s in secrets if s.endswith(("(", "[", "{"))]  # shapes, not answers
    committed = nbformat.read(tp.student, as_version=4)
    text = " ".join(" ".join(cell.source.split()) for cell in committed.cells)
    raw = json.dumps(json.loads(tp.student.read_text(encoding="utf-8")), ensure_ascii=False)
    assert [s for s in secrets if s in text or s in raw] == []


def test_a_solution_cell_without_region_is_refused(tmp_path):
    source = read_source(load_tp(DEMO))
    for cell in source.cells:
        if "solution" in cell.metadata.get("tags", []) and cell.cell_type == "code":
            cell.source = "x = 1"
            break
    with pytest.raises(ValueError, match="must be tagged"):
        student_notebook(source, load_tp(DEMO))


def test_the_page_is_derived_from_registry_notebook_and_config():
    tp = load_tp(DEMO)
    student = nbformat.read(tp.student, as_version=4)
    page = book_page(tp, student, ASSIGNMENT, ROOT)
    assert page.startswith("% Generated by")
    assert f"# {ASSIGNMENT.title}" in page
    assert colab_url(tp.student, ROOT) in page
    assert "https://colab.research.google.com/github/ceia-vit/vitcourse/blob/main/tests/fixtures/tpdemo/" in page
    for part in ASSIGNMENT.parts:
        assert f"| `{part.key}` | {part.title} | {part.points:g} |" in page
    assert f"| **Total** | | **{ASSIGNMENT.total_points:g}** | |" in page
    assert 'check("tpdemo.normalize", normalize)' in page
    assert "… Conserva la forma y el dtype: todavía no implementado" in page  # the computed example
    flat = " ".join(page.split())
    assert [s for s in solution_only_strings(read_source(tp)) if s in flat] == []


def test_colab_link_follows_config(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/someone/fork\n  branch: dev\n")
    notebook = tmp_path / "exercises" / "tp1" / "tp1_alumno.ipynb"
    notebook.parent.mkdir(parents=True)
    notebook.touch()
    assert colab_url(notebook, tmp_path) == (
        "https://colab.research.google.com/github/someone/fork/blob/dev/exercises/tp1/tp1_alumno.ipynb"
    )


def test_leak_search_sees_through_html_highlighting(tmp_path):
    from vitcourse.grading.leaks import find_leaks, secrets_of

    secrets = secrets_of([DEMO])
    assert "counts = torch.bincount(data)" in secrets["tpdemo"]
    (tmp_path / "clean.html").write_text("<p>Parte 3: contar</p><pre>counts = ...</pre>", encoding="utf-8")
    (tmp_path / "_sources").mkdir()
    (tmp_path / "_sources" / "page.md").write_text("nada que ver", encoding="utf-8")
    assert find_leaks(tmp_path, secrets) == []
    highlighted = (
        '<span class="n">counts</span> <span class="o">=</span> ' + "<span>torch</span>.<span>bincount</span>(data)"
    )
    (tmp_path / "leak.html").write_text(f"<div>{highlighted}</div>", encoding="utf-8")
    leaked = find_leaks(tmp_path, secrets)
    assert [(path.name, line) for path, _, line in leaked] == [("leak.html", "counts = torch.bincount(data)")]


@pytest.mark.parametrize("folder", TP_FOLDERS, ids=[p.name for p in TP_FOLDERS])
def test_no_tp_solution_reaches_what_students_see(folder):
    from vitcourse.grading.leaks import secrets_of, visible_text

    tp = load_tp(folder)
    secrets = secrets_of([folder])[tp.key]
    assert len(secrets) >= 3, "too few solution-only lines to prove anything"
    for path in (tp.student, tp.page):
        text = visible_text(path)
        assert [line for line in secrets if line in text] == [], f"{path.name} shows the solution"
