"""Executing the book's pages once (vitcourse.bookexec) and reading the times of a run (benchmarks/test_times.py)."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat

from vitcourse.bookexec import _compared, pages

ROOT = Path(__file__).resolve().parents[1]
HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# {title}

```{{code-cell}} ipython3
print({title!r})
```
"""


def test_every_notebook_page_of_the_toc_sections_included_in_book_order(tmp_path):
    (tmp_path / "book").mkdir()
    for name in ("intro", "04_main", "04b_section", "05_next"):
        (tmp_path / "book" / f"{name}.md").write_text(HEADER.format(title=name), encoding="utf-8")
    (tmp_path / "book" / "glosario.md").write_text("# Glosario\n", encoding="utf-8")  # not a notebook
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: Clases\n    chapters:\n"
        "      - file: book/04_main\n        sections:\n          - file: book/04b_section\n"
        "      - file: book/05_next\n      - file: book/glosario\n",
        encoding="utf-8",
    )
    found = [path.name for path in pages(tmp_path)]
    assert found == ["intro.md", "04_main.md", "04b_section.md", "05_next.md"]


def test_the_books_chapters_are_its_pages():
    found = {path.relative_to(ROOT).as_posix() for path in pages(ROOT)}
    chapters = {path.relative_to(ROOT).as_posix() for path in ROOT.glob("book/[0-9]*.md")}
    assert chapters <= found and "book/intro.md" in found


def test_a_page_is_run_again_only_when_it_compares_outputs():
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    tagged = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("print(1)", metadata={"tags": ["nbval-check-output"]})]
    )
    commented = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)")])
    assert (_compared(plain), _compared(tagged), _compared(commented)) == (False, True, True)


def test_test_times_prints_stages_pages_and_tps(tmp_path):
    times = tmp_path / "times"
    times.mkdir()
    (times / "stages.tsv").write_text("unit\t61000\nbook\t300500\n", encoding="utf-8")
    pages_json = {
        "jobs": 2,
        "wall_seconds": 50.0,
        "pages": [
            {"page": "book/01_a.md", "executed": True, "seconds": 70.0, "ok": True, "error": ""},
            {"page": "book/02_b.md", "executed": True, "seconds": 30.0, "ok": True, "error": ""},
            {"page": "book/intro.md", "executed": False, "seconds": 4.0, "ok": True, "error": ""},
        ],
    }
    (times / "pages.json").write_text(json.dumps(pages_json), encoding="utf-8")
    exercises = tmp_path / "exercises" / "tp1"
    exercises.mkdir(parents=True)
    (exercises / "notas.csv").write_text("student,seconds\nalumno,20.5\nsolucion,40.0\n", encoding="utf-8")
    rerun = '<testsuites><testsuite tests="2" time="33.3"><testcase classname="_build.test.exercises.tp1.ipynb"'
    rerun += (
        ' name="Cell 0" time="3.3"/><testcase classname="_build.test.exercises.tp1.ipynb" name="Cell 1" time="30"/>'
    )
    (times / "exercises-tp1.xml").write_text(rerun + "</testsuite></testsuites>", encoding="utf-8")
    command = [sys.executable, str(ROOT / "benchmarks" / "test_times.py"), "--times", str(times)]
    command += ["--exercises", str(tmp_path / "exercises")]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "make test        361.5" in text and "within the 20-min budget" in text
    assert "70.0  executed  book/01_a.md  OVER 60 s" in text
    assert "= 2.00x from running 2 at a time" in text
    assert "  tp1                             40.0            20.5          33.3" in text  # nbval's re-run too
    rows = subprocess.run([*command, "--markdown"], capture_output=True, text=True, check=True).stdout
    assert "| `make test`, all stages | 362 (6.0 min) |" in rows
