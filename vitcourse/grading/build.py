"""One TP source, everything else generated: the student notebook and the book page.

``python -m vitcourse.grading.build exercises/tp1`` (``make tps`` for every TP) reads
the TP's ``tp.yml`` (:mod:`.tpdir`) and its solved MyST source ``tp1.md`` and writes:

* ``tp1.ipynb``: the solved notebook, the source's Jupytext pair (refreshed only when
  it drifted; the same rules as every chapter, :mod:`vitcourse.notebooks`);
* ``tp1_alumno.ipynb``: the student notebook. Code between ``# BEGIN SOLUTION`` and
  ``# END SOLUTION`` becomes a stub (:mod:`.stubs`), markdown cells tagged ``solution``
  become an answer placeholder (tagged ``answer``); everything else is copied as is.
  Cells tagged ``points`` say what each part is worth: a table after the title, and a
  line before each part's first ``check(...)`` cell and before each answer (an answer
  cell names its part with ``"part": "<name>"`` in its metadata, unless the TP has a
  single written part). The ``# TODO`` instructions must be in Spanish, like the rest;
* ``book/tps/tp1.md``: the TP's page of the book: the statement (from the student
  notebook, so it cannot hold a solution), the parts and points (from the check
  registry), the Colab link (from ``_config.yml``), how to check and how it is graded.

``--check`` writes nothing and fails when a generated file is out of date, which the
test suite runs, so the committed student notebook is always the one the book links.
Before writing, the build verifies that no line that only the solution has appears in
what it generated (:func:`solution_only_strings`).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import nbformat
import yaml

from ..notebooks import check_pair, colab_metadata, repository_root, sync_pair
from .checking import evaluate
from .registry import Assignment, load_checks
from .results import STATUS_TEXT
from .stubs import find_regions, stub_cell
from .tpdir import TPConfig, load_tp

__all__ = [
    "ANSWER_PLACEHOLDER",
    "ANSWER_TAG",
    "POINTS_TAG",
    "SOLUTION_TAG",
    "book_page",
    "build",
    "colab_url",
    "read_source",
    "solution_only_strings",
    "student_notebook",
]

SOLUTION_TAG = "solution"
ANSWER_TAG = "answer"
ANSWER_PLACEHOLDER = "**Tu respuesta:** _escribí acá tu respuesta (doble clic en esta celda para editarla)._"
MIN_SECRET_CHARS = 20


def read_source(tp: TPConfig) -> nbformat.NotebookNode:
    """The solved notebook, read from its MyST source."""
    import jupytext

    return jupytext.read(tp.source, fmt="md:myst")


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


POINTS_TAG = "points"
# Words of English prose that Spanish instructions never use (code names aside).
_ENGLISH = {"the", "and", "with", "of", "each", "every", "from", "into", "then", "when", "this", "that", "unless"}


def _english_todo(todo: str) -> list[str]:
    """The English function words of a ``# TODO`` instruction, outside `code` and calls."""
    prose = re.sub(r"`[^`]*`|\w+\([^()]*\)", " ", todo.lower())
    return sorted({word for word in re.findall(r"[a-z]+", prose) if word in _ENGLISH})


def _check_todos_in_spanish(code: str, where: str) -> None:
    for region in find_regions(code, where):
        english = _english_todo(region.todo)
        if len(english) >= 2:
            raise ValueError(
                f"{where}: the '# TODO' instructions above a solution are for the student and must be in "
                f"Spanish, like the rest of the notebook (found English words {english}): {region.todo!r}"
            )


def _part_line(part, assignment: Assignment) -> str:
    how = "los corrige el docente" if part.manual else "se corrigen automáticamente"
    return f"**{part.title}** (`{part.key}`): {_with_unit(part.points)} de {_points(assignment.total_points)}; {how}."


def _points_table(assignment: Assignment) -> str:
    rows = [
        f"**Puntaje: {_points(assignment.total_points)} puntos.** Cada parte dice lo que vale donde se resuelve.",
        "",
        "| Parte | Puntos | Cómo se corrige |",
        "|---|---:|---|",
    ]
    for part in assignment.parts:
        how = "el docente lee tu respuesta" if part.manual else f'automática: `check("{part.key}", ...)`'
        rows.append(f"| {part.title} (`{part.key}`) | {_points(part.points)} | {how} |")
    return "\n".join(rows)


def _points_cell(text: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = [POINTS_TAG]
    return cell


def _answer_part(cell, assignment: Assignment, where: str):
    """The written part an answer cell belongs to: its ``part`` metadata, or the only one."""
    manual = {part.key.split(".", 1)[1]: part for part in assignment.parts if part.manual}
    name = cell.get("metadata", {}).get("part")
    if name is None and len(manual) == 1:
        return next(iter(manual.values()))
    if name not in manual:
        raise ValueError(
            f"{where}: a written answer must name its part with \"part\" in the cell's metadata "
            f"(one of {sorted(manual)}), got {name!r}"
        )
    return manual[name]


def student_notebook(
    source: nbformat.NotebookNode, tp: TPConfig, assignment: Assignment | None = None
) -> nbformat.NotebookNode:
    """The student's notebook: stubs for solution regions, placeholders for written answers.

    With ``assignment``, cells tagged ``points`` say what each part is worth (see the
    module's docstring) and the ``# TODO`` instructions are checked to be in Spanish.
    Cell ids are derived from the TP key and the cell's position, so rebuilding gives
    the same file byte for byte. The Colab metadata (GPU runtime) is the solved pair's.
    """
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "vitcourse": {"tp": tp.key, "notebook": "student", "source": tp.source.name},
    }
    announced: set[str] = set()
    answered: set[str] = set()
    for index, cell in enumerate(source.cells):
        tags = _tags(cell)
        where = f"{tp.source.name}, cell {index + 1}"
        if assignment is not None:
            if cell.cell_type == "code" and SOLUTION_TAG in tags:
                _check_todos_in_spanish(cell.source, where)
            for part in assignment.auto_parts:
                calls = re.search(rf"\bcheck\(\s*[\"']{re.escape(part.key)}[\"']", cell.source)
                if cell.cell_type == "code" and calls and part.key not in announced:
                    notebook.cells.append(_points_cell(_part_line(part, assignment)))
                    announced.add(part.key)
            if cell.cell_type == "markdown" and SOLUTION_TAG in tags:
                part = _answer_part(cell, assignment, where)
                answered.add(part.key)
                notebook.cells.append(_points_cell(_part_line(part, assignment)))
        if cell.cell_type == "code":
            code = stub_cell(cell.source, where)
            if (SOLUTION_TAG in tags) != (code != cell.source):
                raise ValueError(
                    f"{where}: a code cell with a '# BEGIN SOLUTION' region must be tagged {SOLUTION_TAG!r}, "
                    "and a cell tagged so must have one"
                )
            new = nbformat.v4.new_code_cell(code)
        elif cell.cell_type == "markdown" and SOLUTION_TAG in tags:
            new = nbformat.v4.new_markdown_cell(ANSWER_PLACEHOLDER)
            tags = [ANSWER_TAG]
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
        else:
            new = nbformat.v4.new_raw_cell(cell.source)
        if tags:
            new.metadata["tags"] = tags
        notebook.cells.append(new)
        if assignment is not None and index == 0:
            notebook.cells.append(_points_cell(_points_table(assignment)))
    if assignment is not None:
        missing = [p.key for p in assignment.parts if p.key not in announced | answered]
        if missing:
            raise ValueError(
                f"{tp.source.name}: parts {missing} have no check(...) cell or written answer in the notebook"
            )
    for position, cell in enumerate(notebook.cells):
        cell.id = hashlib.sha1(f"{tp.key}:{position}".encode()).hexdigest()[:8]
    notebook.metadata.update(colab_metadata(notebook))  # a GPU runtime on Colab where the TP uses one
    return notebook


def _normalise(line: str) -> str:
    return " ".join(line.split())


OPENERS = ("(", "[", "{")


def solution_only_strings(source: nbformat.NotebookNode, min_chars: int = MIN_SECRET_CHARS) -> list[str]:
    """Lines that only the solution has: they must never appear in anything students see.

    A line counts when it sits in a solution region or a ``solution`` markdown cell, has
    at least ``min_chars`` characters, and is nowhere in the public part of the source
    (so a docstring the stub keeps, or a line the statement shows on purpose, is not
    a secret). Whitespace is collapsed, so re-wrapped text still matches. A line that
    only opens a bracket (``self.blocks = nn.Sequential(``) says nothing of the answer
    by itself and would match any code of the same shape: its contents, on the lines
    after it, are what is looked for.
    """
    secret, public = set(), set()
    for cell in source.cells:
        lines = cell.source.splitlines()
        if cell.cell_type == "markdown":
            (secret if SOLUTION_TAG in _tags(cell) else public).update(_normalise(line) for line in lines)
            continue
        inside = set()
        for region in find_regions(cell.source):
            inside.update(range(region.begin + 1, region.end))
        for number, line in enumerate(lines):
            (secret if number in inside else public).add(_normalise(line))
        public.update(_normalise(line) for line in stub_cell(cell.source).splitlines())
    return sorted(
        line for line in secret - public if len(line) >= min_chars and not line.endswith(OPENERS)
    )


def _notebook_text(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(_normalise(line) for cell in notebook.cells for line in cell.source.splitlines())


def _repository(root: Path) -> tuple[str, str]:
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repository = config.get("repository", {})
    url = repository.get("url", "").rstrip("/")
    if not url.startswith("https://github.com/"):
        raise ValueError(f"_config.yml: repository.url must be a https://github.com/<org>/<repo> URL, got {url!r}")
    return url, repository.get("branch", "main")


def colab_url(path: Path, root: Path) -> str:
    """``https://colab.research.google.com/github/<org>/<repo>/blob/<branch>/<path>``, from ``_config.yml``."""
    url, branch = _repository(root)
    return f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/{branch}/" + (
        path.resolve().relative_to(root).as_posix()
    )


HEADING = re.compile(r"^(#{1,5}) ")
FENCE = re.compile(r"^\s*(```|~~~)")


def _demote(markdown: str) -> str:
    """Push every heading one level down (outside code fences)."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        out.append("#" + line if not fenced and HEADING.match(line) else line)
    return "\n".join(out)


def _statement(student: nbformat.NotebookNode) -> str:
    """The student notebook as reading matter: its prose and the code the student completes."""
    blocks = []
    for cell in student.cells:
        if POINTS_TAG in _tags(cell):
            continue  # the page lists the parts and points itself
        if cell.cell_type == "markdown" and ANSWER_TAG in _tags(cell):
            blocks.append("_(Respuesta escrita: la completás en el notebook.)_")
        elif cell.cell_type == "markdown":
            text = "\n".join(line for line in cell.source.splitlines() if not line.startswith("# "))
            if "{glue" in text:
                raise ValueError("a TP's statement cannot use {glue}: the book page is not executed")
            if text.strip():
                blocks.append(_demote(text.strip()))
        elif cell.cell_type == "code" and SOLUTION_TAG in _tags(cell):
            blocks.append(f"```python\n{cell.source.strip()}\n```")
    return "\n\n".join(blocks)


def _points(value: float) -> str:
    return f"{value:g}"


def _with_unit(value: float) -> str:
    return f"{value:g} punto" if value == 1 else f"{value:g} puntos"


def _symbols() -> list[str]:
    """The verdict symbols and what each means, from :data:`~vitcourse.grading.results.STATUS_TEXT`."""
    meanings: dict[str, list[str]] = {}
    for icon, text, _ in STATUS_TEXT.values():
        meanings.setdefault(icon, []).append(text)
    return [f"| {icon} | {'; '.join(texts)} |" for icon, texts in meanings.items()]


def book_page(tp: TPConfig, student: nbformat.NotebookNode, assignment: Assignment, root: Path) -> str:
    """The TP's page of the book (MyST Markdown, Spanish). Everything on it is derived."""
    student_path = tp.student.resolve().relative_to(root).as_posix()
    repo_url, branch = _repository(root)
    colab = colab_url(tp.student, root)
    auto = assignment.auto_parts
    manual = [p for p in assignment.parts if p.manual]
    checks = [
        line.strip()
        for cell in student.cells
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if line.strip().startswith("check(")
    ]
    example = evaluate(auto[0].key, ...).to_text() if auto else ""
    lines = [
        f"% Generated by `python -m vitcourse.grading.build {tp.folder.relative_to(root).as_posix()}` from",
        f"% {tp.source.relative_to(root).as_posix()} and the checks in {tp.checks}; do not edit by hand.",
        "",
        f"# {assignment.title}",
        "",
        "```{admonition} En resumen",
        f"- **Notebook:** [`{student_path}`]({repo_url}/blob/{branch}/{student_path}), [abrirlo en Colab]({colab}).",
        f"- **Puntaje:** {_points(assignment.total_points)} puntos en {len(assignment.parts)} partes"
        + (
            f" ({_points(sum(p.points for p in auto))} se corrigen automáticamente y "
            f"{_points(sum(p.points for p in manual))} los corrige el docente)."
            if manual
            else ", todas corregidas automáticamente."
        ),
        "- **Se entrega:** el notebook completo (`.ipynb`), con tus soluciones en las celdas marcadas `# TODO`.",
        "```",
        "",
        "## Cómo abrirlo",
        "",
        f"**[Abrir el notebook del alumno en Colab]({colab})**",
        "",
        (
            f"El enlace abre en Colab el notebook del alumno, `{tp.student.name}`, desde el repositorio del curso. "
            "Guardá una copia en tu Drive (*Archivo → Guardar una copia en Drive*) antes de trabajar. "
            "La primera celda instala `vitcourse` en la versión de este libro; la segunda define `PROFILE` "
            '(`"auto"` elige `full` en Colab). Para trabajar en tu máquina, con el repositorio clonado y '
            "`make setup` hecho:"
        ),
        "",
        "```bash",
        f"jupyter lab {student_path}",
        "```",
        "",
        "## Enunciado",
        "",
        (
            "_El texto del notebook, con lo que tenés que completar; el código que se da hecho, sus resultados y sus "
            "figuras están en el notebook._"
        ),
        "",
        _statement(student),
        "",
        "## Qué se evalúa",
        "",
        "| Parte | Qué es | Puntos | Cómo se corrige |",
        "|---|---|---:|---|",
    ]
    for part in assignment.parts:
        count = len(part.public_tests)
        how = (
            "el docente lee tu respuesta"
            if part.manual
            else (f"{count} verificación automática" if count == 1 else f"{count} verificaciones automáticas")
        )
        lines.append(f"| `{part.key}` | {part.title} | {_points(part.points)} | {how} |")
    lines += [f"| **Total** | | **{_points(assignment.total_points)}** | |", ""]
    for part in assignment.parts:
        lines += [f"**{part.title}** (`{part.key}`, {_with_unit(part.points)}). {part.description}".rstrip(), ""]
        if part.manual:
            continue
        lines += ["Verificaciones:", ""]
        weights = {t.weight for t in part.public_tests}
        for test in part.public_tests:
            share = f" ({_points(test.weight)} de {_points(sum(t.weight for t in part.public_tests))})"
            lines.append(f"- {test.title}" + (share if len(weights) > 1 else ""))
        lines.append("")
    lines += [
        "## Cómo correr los checks",
        "",
        "Cada parte que se corrige automáticamente tiene en el notebook una celda que la verifica al instante:",
        "",
        "```python",
        "from vitcourse.grading import check",
        "",
        *checks,
        "```",
        "",
        (
            "`check` corre tu código sobre entradas aleatorias con semillas fijas, hace lo mismo con la "
            "implementación de referencia del curso y compara: formas, `dtype`, valores (con tolerancia), "
            "que los gradientes lleguen y que los parámetros estén registrados. Por cada verificación dice "
            "qué se esperaba, qué llegó y una pista. Mientras una parte siga con el código inicial "
            "(`raise NotImplementedError` o `...`) el veredicto es *todavía no implementado*, sin traceback. "
            "Así se ve antes de empezar:"
        ),
        "",
        "```text",
        example,
        "```",
        "",
        "| Símbolo | Significa |",
        "|---|---|",
        *_symbols(),
        "",
        "## Cómo se corrige",
        "",
        "El docente corre `vitcourse grade` sobre todas las entregas. Por cada una:",
        "",
        (
            '1. Ejecuta una copia de tu notebook de punta a punta en un kernel nuevo, con `PROFILE = "smoke"` '
            f"(CPU, sin red), a lo sumo {_points(tp.cell_timeout)} s por celda y {_points(tp.timeout)} s en total. "
            "Si una celda falla, las siguientes se ejecutan igual."
        ),
        (
            "2. Toma de tu notebook las definiciones (`import`, `def`, `class` y constantes) y las prueba en un "
            "proceso aparte, con los mismos tests que `check` (y los tests privados que agregue el docente): "
            "redefinir `check` o modificar `vitcourse` o `torch` desde el notebook no cambia la nota. "
            f"Cada prueba tiene {_points(tp.test_timeout)} s. Una parte que falla no impide corregir las demás."
        ),
        (
            "3. Los puntos de cada parte se reparten entre sus verificaciones; las respuestas escritas las "
            "corrige el docente."
        ),
        "",
        "Recibís un archivo con la devolución: el veredicto de cada verificación, qué se esperaba y qué llegó.",
        "",
    ]
    return "\n".join(lines)


def _write(path: Path, text: str, check: bool, stale: list[str], root: Path) -> None:
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == text:
        return
    stale.append(str(path.relative_to(root)) if path.is_relative_to(root) else str(path))
    if not check:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def build(folder: str | Path, check: bool = False) -> list[str]:
    """Generate (or, with ``check``, verify) a TP's solved pair, student notebook and page.

    Returns:
        The files that were (or, with ``check``, would be) rewritten.

    Raises:
        ValueError: the source breaks the conventions, or something generated would
            contain a line only the solution has.
    """
    tp = load_tp(folder)
    root = repository_root(tp.folder)
    assignment = load_checks(tp.checks, tp.pythonpath)
    if assignment.key != tp.key:
        raise ValueError(f"{tp.folder}/tp.yml says key {tp.key!r} but {tp.checks} declares {assignment.key!r}")
    stale: list[str] = []
    problems = check_pair(tp.source, root)
    if problems:
        stale.append(str(tp.solution.relative_to(root)))
        if not check:
            sync_pair(tp.source, root)
    source = read_source(tp)
    student = student_notebook(source, tp, assignment)
    secrets = solution_only_strings(source)
    outputs = {tp.student: nbformat.writes(student) + "\n"}
    if tp.page is not None:
        outputs[tp.page] = book_page(tp, student, assignment, root)
    for path, text in outputs.items():
        flat = " ".join(text.split()) if path.suffix == ".md" else _notebook_text(student)
        leaked = [line for line in secrets if line in flat]
        if leaked:
            raise ValueError(f"{path.name} would contain solution-only text: {leaked[:3]}")
        _write(path, text, check, stale, root)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitcourse.grading.build", description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="TP folders (each with a tp.yml)")
    parser.add_argument("--check", action="store_true", help="write nothing; fail when something is out of date")
    args = parser.parse_args(argv)
    failed = False
    for folder in args.folders:
        stale = build(folder, check=args.check)
        for name in stale:
            print(f"{'out of date' if args.check else 'wrote'}: {name}")
        failed |= args.check and bool(stale)
    if failed:
        print("run `make tps` (python -m vitcourse.grading.build <tp folder>) and commit the result", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
