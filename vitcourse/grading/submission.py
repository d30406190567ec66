"""Reading a submission: is it a notebook, and what did the student define and answer?

Grading never trusts the student's kernel, so it needs the student's definitions on
their own: :func:`extract_definitions` takes every code cell of the notebook and keeps
its top-level ``import``, ``def``, ``class`` and constant assignments (``NUM_PATCHES =
196``), in notebook order, so a later definition replaces an earlier one exactly as in
the kernel. Everything else (calls, loops, plots, training, monkeypatching such as
``torch.allclose = ...``) is left out: it is what the notebook *does*, not what it
*defines*, and it already ran once in the notebook's own kernel.

Line numbers are kept (dropped lines become blank) so an error points at the
student's own line.
"""

from __future__ import annotations

import ast
import builtins
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .build import ANSWER_TAG, SOLUTION_TAG
from .stubs import STUB_MESSAGE, python_source

__all__ = [
    "Chunk",
    "InvalidSubmission",
    "bindings",
    "dependent_cells",
    "extract_definitions",
    "read_submission",
    "reference_used",
    "unfinished_names",
    "uses_reference",
    "written_answers",
]

MAX_BYTES = 50 * 2**20
# Calls allowed on the right of a kept assignment: cheap, pure builtins.
PURE_CALLS = {
    "int",
    "float",
    "str",
    "bool",
    "len",
    "range",
    "tuple",
    "list",
    "dict",
    "set",
    "frozenset",
    "min",
    "max",
    "abs",
    "round",
    "sum",
    "sorted",
}


BUILTINS = set(dir(builtins))


class InvalidSubmission(Exception):
    """The file can't be graded; the message says why, in Spanish."""


@dataclass
class Chunk:
    """The definitions of one code cell.

    Attributes:
        cell: the cell's position in the notebook, counted from 1.
        code: the cell's code with everything but definitions blanked out.
        error: why the cell could not be read (a syntax error), else ``""``.
        names: ``{name: kind}`` bound at top level, kind in ``import``/``def``/``class``/``assign``.
    """

    cell: int
    code: str
    error: str = ""
    names: dict[str, str] | None = None


def read_submission(path: Path, tp_key: str | None = None) -> nbformat.NotebookNode:
    """Read and validate a submitted file.

    Raises:
        InvalidSubmission: too big, not UTF-8 JSON, not a notebook, empty, or another TP's.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise InvalidSubmission(f"el archivo pesa {size / 2**20:.0f} MB; el máximo es {MAX_BYTES / 2**20:.0f} MB")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidSubmission(f"el archivo no es texto UTF-8 (byte {error.start}); ¿es un .ipynb?") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidSubmission(
            f"el archivo no es JSON válido (línea {error.lineno}, columna {error.colno}: {error.msg}); "
            "un .ipynb se descarga con Archivo → Descargar → Descargar .ipynb"
        ) from error
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise InvalidSubmission("el archivo es JSON pero no un notebook de Jupyter (no tiene 'cells')")
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises many kinds on malformed notebooks
        raise InvalidSubmission(f"el archivo no es un notebook de Jupyter legible: {error}") from error
    code = [c for c in notebook.cells if c.get("cell_type") == "code" and str(c.get("source", "")).strip()]
    if not code:
        raise InvalidSubmission("el notebook está vacío: no tiene celdas de código")
    other = notebook.metadata.get("vitcourse", {}).get("tp") if isinstance(notebook.metadata, dict) else None
    if tp_key and other and other != tp_key:
        raise InvalidSubmission(f"es el notebook de {other}, no el de {tp_key}")
    return notebook


def _safe_value(node: ast.AST) -> bool:
    """An expression with no calls other than cheap builtins (so keeping it can't run anything big)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            if not (isinstance(child.func, ast.Name) and child.func.id in PURE_CALLS):
                return False
        elif isinstance(child, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            return False
    return True


def _assigned_names(node: ast.AST) -> list[str] | None:
    """Plain names an assignment binds, or ``None`` if it also writes attributes or items."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = []
    for target in targets:
        for element in target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]:
            if not isinstance(element, ast.Name):
                return None
            names.append(element.id)
    return names


def _free_names(node: ast.AST) -> set[str]:
    """Names an expression reads (lambda parameters and comprehension variables excluded)."""
    local = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    local |= {
        a.arg for n in ast.walk(node) if isinstance(n, ast.Lambda) for a in ast.walk(n.args) if isinstance(a, ast.arg)
    }
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - local


def _kept(node: ast.stmt, known: set[str]) -> dict[str, str] | None:
    """The names a top-level statement defines if it is a definition, else ``None``.

    An assignment counts only when it is a constant: no calls but cheap builtins, and it
    reads only names that earlier kept statements (or Python) define, so
    ``GRID_SIDE = CROP // PATCH`` stays and ``ok = table[table.status == "ok"]`` goes.
    """
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0]: "import" for alias in node.names if alias.name != "*"}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return {node.name: "def"}
    if isinstance(node, ast.ClassDef):
        return {node.name: "class"}
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _safe_value(node.value):
        names = _assigned_names(node)
        if names and _free_names(node.value) <= known | BUILTINS:
            return {name: "assign" for name in names}
    return None


def _definitions(source: str, cell: int, known: set[str]) -> Chunk:
    code = python_source(source)
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        return Chunk(cell, "", error=f"SyntaxError: {error.msg} (línea {error.lineno})", names={})
    lines = code.splitlines()
    keep, drop, names = set(), set(), {}
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        span = set(range(start - 1, node.end_lineno))
        defined = _kept(node, known)
        if defined is None:
            drop |= span
        else:
            keep |= span
            names.update(defined)
            known |= set(defined)
    keep -= drop  # a line shared with a dropped statement (``a = 1; run()``) goes too
    text = "\n".join(line if i in keep else "" for i, line in enumerate(lines))
    return Chunk(cell, text, names=names)


def extract_definitions(notebook: nbformat.NotebookNode) -> list[Chunk]:
    """One :class:`Chunk` per code cell with something to define, in notebook order."""
    chunks, known = [], set()
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code" or not str(cell.get("source", "")).strip():
            continue
        chunk = _definitions(str(cell.source), index, known)
        if chunk.error or chunk.code.strip():
            chunks.append(chunk)
    return chunks


def bindings(chunks: list[Chunk]) -> dict[str, str]:
    """For every top-level name, how its *last* binding made it: ``def``, ``class``, ``import``, ``assign``."""
    kinds: dict[str, str] = {}
    for chunk in chunks:
        kinds.update(chunk.names or {})
    return kinds


def written_answers(notebook: nbformat.NotebookNode, max_chars: int = 4000) -> list[tuple[int, str]]:
    """The student's written answers: markdown cells tagged ``answer`` (or ``solution``)."""
    answers = []
    for index, cell in enumerate(notebook.cells, start=1):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "markdown" and (ANSWER_TAG in tags or SOLUTION_TAG in tags):
            answers.append((index, str(cell.source)[:max_chars]))
    return answers


def _parsed_cells(notebook: nbformat.NotebookNode):
    """``(position from 1, source, tree)`` for every code cell that parses."""
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        source = python_source(str(cell.get("source", "")))
        try:
            yield index, source, ast.parse(source)
        except SyntaxError:
            continue


def _is_stub(node: ast.stmt, source: str) -> bool:
    """A definition the student notebook left for the student: its stub is still there."""
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        return isinstance(node.value, ast.Constant) and node.value.value is Ellipsis
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return STUB_MESSAGE in (ast.get_source_segment(source, node) or "")
    return False


def _bound(tree: ast.AST) -> set[str]:
    return (
        {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        | {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        | {
            (a.asname or a.name).split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in n.names
        }
    )


def unfinished_names(notebook: nbformat.NotebookNode) -> set[str]:
    """Names whose last top-level binding is still the student notebook's stub."""
    unfinished: set[str] = set()
    for _, source, tree in _parsed_cells(notebook):
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                names = set(_assigned_names(node) or [])
            else:
                names = set(_kept(node, set()) or {})
            if _is_stub(node, source):
                unfinished |= names
            else:
                unfinished -= names
    return unfinished


def dependent_cells(notebook: nbformat.NotebookNode, names: set[str]) -> set[int]:
    """Code cells (positions from 1) that use ``names``, directly or through what other cells computed from them.

    A cell that reads a tainted name taints every name it binds; a cell that rebinds a
    name without reading tainted ones cleans it. It is an over-approximation made for
    one question: did this cell fail only because an earlier part is unfinished?
    """
    tainted, dependent = set(names), set()
    for index, _, tree in _parsed_cells(notebook):
        loads = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        bound = _bound(tree)
        if loads & tainted:
            dependent.add(index)
            tainted |= bound
        else:
            tainted -= bound - names
    return dependent


def reference_used(chunks: list[Chunk], target: str, references: object | Sequence[object]) -> str:
    """The ready-made implementation the student's definition of ``target`` leans on, or ``""``.

    The reference is installed wherever the student's code runs, so nothing stops a
    notebook from subclassing it or calling it. This catches the plain cases: inside
    the last ``def``/``class`` of ``target``, a name imported as one of ``references``
    (``from vitcourse.layers import LearnedPositionalEmbedding as L``) or an attribute
    of an imported module with its name (``vitcourse.layers.LearnedPositionalEmbedding``,
    ``nn.MultiheadAttention``).

    Args:
        chunks: the submission's definitions (:func:`extract_definitions`).
        target: the name the part grades.
        references: the reference, or several objects whose use doesn't count
            (:attr:`vitcourse.grading.registry.Part.originals`).

    Returns:
        ``"module.Name"`` of the first one found, or ``""``.
    """
    if not isinstance(references, (list, tuple)):
        references = (references,)
    wanted = {}  # name -> (module, "module.Name")
    for reference in references:
        name = getattr(reference, "__name__", None)
        if name:
            module = getattr(reference, "__module__", None) or ""
            wanted.setdefault(name, (module, f"{module}.{name}" if module else name))
    if not wanted:
        return ""
    aliases, modules, definition = {}, set(), None
    for chunk in chunks:
        try:
            tree = ast.parse(chunk.code)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                modules |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    module = wanted.get(alias.name, ("", ""))[0]
                    if alias.name in wanted and (module == node.module or module.startswith(f"{node.module}.")):
                        aliases[alias.asname or alias.name] = wanted[alias.name][1]
                    else:
                        modules.add(alias.asname or alias.name)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == target:
                definition = node
    if definition is None:
        return ""
    for node in ast.walk(definition):
        if isinstance(node, ast.Name) and node.id in aliases:
            return aliases[node.id]
        if isinstance(node, ast.Attribute) and node.attr in wanted:
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in modules:
                return wanted[node.attr][1]
    return ""


def uses_reference(chunks: list[Chunk], target: str, reference: object | Sequence[object]) -> bool:
    """Does the student's definition of ``target`` lean on the reference (see :func:`reference_used`)?"""
    return bool(reference_used(chunks, target, reference))
