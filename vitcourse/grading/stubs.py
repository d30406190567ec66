"""Turn a solved code cell into the student's version: solutions out, stubs in.

A TP's source marks what the student writes::

    # TODO: implement the learned positional embedding: a (1, N, D) parameter added to x.
    # BEGIN SOLUTION
    class LearnedPositionalEmbedding(nn.Module):
        \"\"\"Adds a trainable table of positions to the tokens.\"\"\"

        def __init__(self, num_patches, embed_dim):
            super().__init__()
            self.pos_embed = nn.Parameter(torch.randn(1, num_patches, embed_dim))
        ...
    # END SOLUTION

:func:`stub_cell` keeps the ``# TODO`` comment (it is outside the region) and puts in
the region's place code that still *defines* what the region defined, so later cells
and the ``check`` calls run:

* a function keeps its decorators, signature and docstring; its body becomes
  ``raise NotImplementedError(...)``; a class keeps its header, docstring and the
  stubs of its methods;
* ``name = <solution>`` becomes ``name = ...`` (``check`` reports ``...`` as "not
  implemented yet");
* a region indented inside a function body becomes a single ``raise NotImplementedError``;
* imports, comments and every other statement of the region are dropped.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass

__all__ = ["BEGIN", "END", "STUB_MESSAGE", "Region", "StubError", "find_regions", "python_source", "stub_cell"]

BEGIN = re.compile(r"^(?P<indent>[ \t]*)#+\s*BEGIN SOLUTION\s*$")
END = re.compile(r"^[ \t]*#+\s*END SOLUTION\s*$")
TODO = re.compile(r"^[ \t]*#\s*TODO\b")


class StubError(ValueError):
    """A TP source that breaks the conventions (unbalanced markers, no TODO, bad syntax)."""


@dataclass
class Region:
    """One ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block of a cell.

    Attributes:
        begin, end: 0-based line numbers of the two marker lines.
        indent: the markers' indentation (the region's code is at least that deep).
        todo: the ``# TODO`` comment lines right above ``begin``, comment marks removed.
    """

    begin: int
    end: int
    indent: str
    todo: str


def python_source(code: str) -> str:
    """A cell's code as plain Python: IPython's ``%magic`` and ``!shell`` lines translated.

    Line magics become ``get_ipython().run_line_magic(...)`` calls on the same line, so
    line numbers are kept.
    """
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # without IPython, comment them out
        return "\n".join("# " + line if line.lstrip()[:1] in ("%", "!") else line for line in code.splitlines())
    return TransformerManager().transform_cell(code)


def find_regions(source: str, where: str = "cell") -> list[Region]:
    """The solution regions of a cell, checked: balanced, not nested, each under a ``# TODO``."""
    lines = source.splitlines()
    regions, open_at = [], None
    for number, line in enumerate(lines):
        if BEGIN.match(line):
            if open_at is not None:
                raise StubError(f"{where}, line {number + 1}: BEGIN SOLUTION inside another solution region")
            open_at = number
        elif END.match(line):
            if open_at is None:
                raise StubError(f"{where}, line {number + 1}: END SOLUTION without a BEGIN SOLUTION")
            indent = BEGIN.match(lines[open_at]).group("indent")
            regions.append(Region(open_at, number, indent, _todo_above(lines, open_at, where)))
            open_at = None
    if open_at is not None:
        raise StubError(f"{where}, line {open_at + 1}: BEGIN SOLUTION is never closed by END SOLUTION")
    return regions


def _todo_above(lines: list[str], begin: int, where: str) -> str:
    """The comment block right above a region, which must start with ``# TODO``."""
    first = begin
    while first > 0 and lines[first - 1].lstrip().startswith("#"):
        first -= 1
    block = lines[first:begin]
    starts = [i for i, line in enumerate(block) if TODO.match(line)]
    if not starts:
        raise StubError(
            f"{where}, line {begin + 1}: a solution region must come right after a '# TODO: ...' comment "
            "that tells the student what to write"
        )
    return "\n".join(line.strip().lstrip("#").strip() for line in block[starts[0] :])


def _signature_end(lines: list[str], node: ast.AST) -> tuple[int, int]:
    """0-based line and column of the ``:`` that ends a ``def``/``class`` header."""
    start = node.lineno - 1
    text = "\n".join(lines[start:]) + "\n"
    depth = 0
    seen_keyword = False
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.NAME and token.string in ("def", "class") and depth == 0:
            seen_keyword = True
        elif token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif seen_keyword and depth == 0 and token.type == tokenize.OP and token.string == ":":
            return start + token.start[0] - 1, token.start[1]
    raise StubError(f"could not find the end of the header of {getattr(node, 'name', '?')}")


def _docstring_lines(lines: list[str], node: ast.AST) -> list[str]:
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return lines[first.lineno - 1 : first.end_lineno]
    return []


def _header(lines: list[str], node: ast.AST) -> list[str]:
    """The decorators and the ``def``/``class`` line(s), cut after the colon."""
    start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
    end, column = _signature_end(lines, node)
    header = lines[start : end + 1]
    header[-1] = header[-1][: column + 1]
    return header


def _body_indent(lines: list[str], node: ast.AST, header_indent: str) -> str:
    if node.body[0].lineno - 1 > _signature_end(lines, node)[0]:
        return _indent_of(lines[node.body[0].lineno - 1])
    return header_indent + "    "  # a one-line ``def f(): ...``


STUB_MESSAGE = "todavía no implementado (ver el TODO)"


# The book shows code at most this wide (book/ESTILO.md); a longer raise is split.
MAX_LINE = 88


def _raise(qualname: str, indent: str) -> list[str]:
    line = f'{indent}raise NotImplementedError("{qualname}: {STUB_MESSAGE}")'
    if len(line) <= MAX_LINE:
        return [line]
    inner = indent + "    "
    return [f"{indent}raise NotImplementedError(", f'{inner}"{qualname}: "', f'{inner}"{STUB_MESSAGE}"', f"{indent})"]


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _stub_function(lines: list[str], node: ast.AST, prefix: str = "") -> list[str]:
    indent = _body_indent(lines, node, _indent_of(lines[node.lineno - 1]))
    return _header(lines, node) + _docstring_lines(lines, node) + _raise(prefix + node.name, indent)


def _stub_class(lines: list[str], node: ast.ClassDef) -> list[str]:
    out = _header(lines, node) + _docstring_lines(lines, node)
    methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for method in methods:
        out += [""] + _stub_function(lines, method, prefix=f"{node.name}.")
    if not methods and not _docstring_lines(lines, node):
        out.append(_body_indent(lines, node, _indent_of(lines[node.lineno - 1])) + "pass")
    return out


def _assigned_names(node: ast.AST) -> list[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = []
    for target in targets:
        elements = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        names += [e.id for e in elements if isinstance(e, ast.Name)]
    return list(dict.fromkeys(names))


def _stub_top_level(code: str, where: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        raise StubError(f"{where}: the solution region is not valid Python on its own: {error}") from error
    lines = code.splitlines()
    items: list[tuple[bool, list[str]]] = []  # (is a definition, lines)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            items.append((True, _stub_function(lines, node)))
        elif isinstance(node, ast.ClassDef):
            items.append((True, _stub_class(lines, node)))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            items.append((False, [f"{name} = ...  # tu código" for name in _assigned_names(node)]))
    out: list[str] = []
    for i, (definition, item) in enumerate(items):
        if i and (definition or items[i - 1][0]):
            out += ["", ""]
        out += item
    return out


def _enclosing_function(tree: ast.AST, line: int) -> str:
    """Qualified name of the innermost function around a 1-based line."""
    best, stack = "", []

    def visit(node: ast.AST, names: list[str]) -> None:
        nonlocal best
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = [*names, child.name]
                if child.lineno <= line <= child.end_lineno and isinstance(
                    child, (ast.FunctionDef, ast.AsyncFunctionDef)
                ):
                    best = ".".join(inner)
                visit(child, inner)
            else:
                visit(child, names)

    visit(tree, stack)
    return best or "esta parte"


def stub_cell(source: str, where: str = "cell") -> str:
    """The student's version of a code cell: every solution region replaced by its stub.

    Args:
        source: the solved cell's code.
        where: how to name the cell in error messages.

    Returns:
        The cell's code with stubs; everything outside the regions unchanged.

    Raises:
        StubError: when the markers or the code break the conventions above.
    """
    regions = find_regions(source, where)
    if not regions:
        return source
    lines = source.splitlines()
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError as error:
        raise StubError(f"{where}: the solved cell is not valid Python: {error}") from error
    out: list[str] = []
    previous_end = -1
    for region in regions:
        out += lines[previous_end + 1 : region.begin]
        body = lines[region.begin + 1 : region.end]
        if region.indent:
            out += _raise(_enclosing_function(tree, region.begin + 1), region.indent)
        else:
            out += _stub_top_level("\n".join(body), f"{where}, line {region.begin + 2}")
        previous_end = region.end
    out += lines[previous_end + 1 :]
    stubbed = "\n".join(out).rstrip() + ("\n" if source.endswith("\n") else "")
    try:
        ast.parse(python_source(stubbed))
    except SyntaxError as error:  # e.g. a region that was a whole ``if`` body
        raise StubError(f"{where}: the student's version is not valid Python ({error}); move the markers") from error
    return stubbed
