"""Wrap a page's code at 88 characters, as book/ESTILO.md asks (checked by tests/test_style.py).

    .venv/bin/python tests/wrap_code.py book/04_gpt_imagegpt.md [more pages] [--package]

For every code cell with a line over 88 characters: a trailing comment that makes the line
too long moves to its own line above; a ``# fmt: skip`` that keeps a long statement as it is
goes; ``ruff format --line-length 88`` formats the cell (through a notebook, so IPython
magics and a final ``;`` survive); long strings are split into implicitly concatenated
pieces at spaces; long comments and docstring lines are re-wrapped. With ``--package``, the
package objects the page shows with ``{literalinclude}`` (``:pyobject:``) get the same
treatment in their ``.py`` files, counting the ``:dedent:``.

What remains too long is listed, to wrap by hand. Needs ``ruff`` (requirements.txt).
"""

from __future__ import annotations

import ast
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tokenize
from pathlib import Path

import jupytext

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_style import MAX_LINE, cell_body, include_target, parse, pyobject_span  # noqa: E402

KEEP_TRAILING = ("# fmt:", "# noqa", "# type:", "# pragma")
# Comment lines never joined to the one above: the TPs' solution markers, a new TODO.
MARKERS = ("# BEGIN SOLUTION", "# END SOLUTION", "# BEGIN", "# END")
PARAGRAPH_STARTS = ("BEGIN ", "END ", "TODO")
BRACKETS = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}


def ruff() -> str:
    found = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(found).exists():
        sys.exit("wrap_code.py needs ruff: pip install ruff")
    return found


def too_long(source: str, limit: int) -> bool:
    return any(len(line) > limit for line in source.split("\n"))


def tokens_of(source: str) -> list[tokenize.TokenInfo] | None:
    try:
        return list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def python_part(source: str) -> str:
    """The source with IPython magics commented out, same lines (for tokenize and ast)."""
    return "\n".join(
        "#" + line if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")
    )


def lift_comments(source: str, limit: int) -> str:
    """Move a trailing comment above its line when the line is too long with it."""
    tokens = tokens_of(python_part(source))
    if tokens is None:
        return source
    lines = source.split("\n")
    moves = {}
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        row, col = token.start
        line = lines[row - 1]
        code = line[:col].rstrip()
        if len(line) <= limit or not code.strip() or token.string.startswith(KEEP_TRAILING):
            continue
        moves[row - 1] = (code, token.string)
    for index in sorted(moves, reverse=True):
        code, comment = moves[index]
        indent = code[: len(code) - len(code.lstrip())]
        lines[index : index + 1] = [indent + comment, code]
    return "\n".join(lines)


def drop_fmt_skip(source: str, limit: int) -> str:
    """Remove ``# fmt: skip`` from statements that have a line too long."""
    try:
        tree = ast.parse(python_part(source))
    except SyntaxError:
        return source
    lines = source.split("\n")
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        last = node.end_lineno - 1
        if "# fmt: skip" in lines[last] and any(len(lines[i]) > limit for i in range(node.lineno - 1, last + 1)):
            lines[last] = lines[last].replace("# fmt: skip", "").rstrip()
    return "\n".join(lines)


def split_at_spaces(body: str, first: int, rest: int, fstring: bool) -> list[str]:
    """Cut a string's body after spaces (never inside an f-string's braces) into pieces."""
    cuts, depth, i = [], 0, 0
    while i < len(body):
        pair = body[i : i + 2]
        if fstring and pair in ("{{", "}}") and depth == 0:
            i += 2
            continue
        if fstring and body[i] == "{":
            depth += 1
        elif fstring and body[i] == "}":
            depth -= 1
        elif body[i] == " " and depth == 0 and body[i - 1 : i] != "\\":
            cuts.append(i + 1)
        i += 1
    pieces, start, width = [], 0, first
    while len(body) - start > width:
        fitting = [cut for cut in cuts if start < cut <= start + width]
        if not fitting:
            later = [cut for cut in cuts if cut > start]
            if not later:
                break
            fitting = [later[0]]
        pieces.append(body[start : fitting[-1]])
        start, width = fitting[-1], rest
    pieces.append(body[start:])
    return [piece for piece in pieces if piece]


def split_strings(source: str, limit: int) -> str:
    """Split string literals on lines too long into implicitly concatenated pieces."""
    tokens = tokens_of(python_part(source))
    if tokens is None:
        return source
    lines = source.split("\n")
    depth, edits = 0, []
    for token in tokens:
        if token.type == tokenize.OP and token.string in BRACKETS:
            depth += BRACKETS[token.string]
            continue
        if token.type != tokenize.STRING or token.start[0] != token.end[0]:
            continue
        row, col = token.start
        if len(lines[row - 1]) <= limit:
            continue
        text = token.string
        prefix = text[: len(text) - len(text.lstrip("rRbBuUfF"))]
        quote = text[len(prefix)]
        if text[len(prefix) : len(prefix) + 3] == quote * 3:
            continue
        body = text[len(prefix) + 1 : -1]
        overhead = len(prefix) + 2
        pieces = split_at_spaces(
            body, limit - col - overhead - (0 if depth else 1), limit - col - overhead, "f" in prefix.lower()
        )
        if len(pieces) < 2:
            continue
        joined = f"\n{' ' * col}".join(f"{prefix}{quote}{piece}{quote}" for piece in pieces)
        edits.append((row, col, token.end[1], joined if depth else f"({joined})"))
    for row, start, end, new in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:start] + new + line[end:]
    return "\n".join(lines)


STRING_LINE = re.compile(r"^(?P<indent>\s*)(?P<prefix>[rRbBuUfF]*)(?P<quote>[\"'])(?P<body>.*)(?P=quote)(?P<comma>,?)$")


def merge_strings(source: str) -> str:
    """Join runs of lines that each hold one piece of an implicitly concatenated string.

    ``split_strings`` then cuts the joined string where the line is full, so a string
    split once at 120 characters and again at 88 doesn't end in short fragments.
    """
    lines, out = source.split("\n"), []
    for line in lines:
        match = STRING_LINE.match(line)
        previous = STRING_LINE.match(out[-1]) if out else None
        if match and previous and not previous["comma"] and _joinable(previous, match):
            prefix = previous["prefix"] if "f" in previous["prefix"].lower() else match["prefix"]
            body = previous["body"] + match["body"]
            quote = previous["quote"]
            out[-1] = f"{previous['indent']}{prefix}{quote}{body}{quote}{match['comma']}"
        else:
            out.append(line)
    return "\n".join(out)


def _joinable(first: re.Match, second: re.Match) -> bool:
    if first["indent"] != second["indent"] or first["quote"] != second["quote"]:
        return False
    if "\\" in first["body"] + second["body"] or first["quote"] in first["body"] + second["body"]:
        return False
    raw = {"r" in first["prefix"].lower(), "r" in second["prefix"].lower()}
    byte = {"b" in first["prefix"].lower(), "b" in second["prefix"].lower()}
    if len(raw) > 1 or len(byte) > 1:
        return False
    formatted = ["f" in first["prefix"].lower(), "f" in second["prefix"].lower()]
    if formatted[0] != formatted[1]:
        plain = second["body"] if formatted[0] else first["body"]
        return "{" not in plain and "}" not in plain
    return True


def wrap_comments(source: str, limit: int) -> str:
    """Re-wrap blocks of comment-only lines (same indentation) that have a line too long."""
    lines, out, index = source.split("\n"), [], 0
    while index < len(lines):
        line = lines[index]
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if not stripped.startswith("# ") or stripped.startswith(KEEP_TRAILING + MARKERS):
            out.append(line)
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].startswith(indent + "# "):
            if lines[end][len(indent) + 2 :].startswith((" ", "-", "*", *PARAGRAPH_STARTS)):
                break
            end += 1
        block = lines[index:end]
        if any(len(item) > limit for item in block):
            text = " ".join(item.strip()[2:] for item in block)
            out += textwrap.wrap(
                text, width=limit, initial_indent=indent + "# ", subsequent_indent=indent + "# ",
                break_long_words=False, break_on_hyphens=False,
            )  # fmt: skip
        else:
            out += block
        index = end
    return "\n".join(out)


ENTRY = re.compile(r"^[\w*][\w*.]*( \([^)]*\))?: ")


def reflow(lines: list[str], index: int, limit: int) -> tuple[list[str], int]:
    """Re-wrap the docstring paragraph starting at ``lines[index]``; returns it and its end."""
    line = lines[index]
    indent = len(line) - len(line.lstrip())
    entry = bool(ENTRY.match(line.lstrip()))
    end = index + 1
    while end < len(lines):
        following = lines[end]
        stripped = following.lstrip()
        depth = len(following) - len(stripped)
        if not stripped or stripped.startswith('"""') or ENTRY.match(stripped) or stripped.endswith(":"):
            break
        if depth != indent and not (entry and depth > indent):
            break
        end += 1
    text = " ".join(part.strip() for part in lines[index:end])
    closing = text.endswith('"""') and not text.startswith('"""')
    if closing:
        text = text[:-3].rstrip()
    wrapped = textwrap.wrap(
        text,
        width=limit,
        initial_indent=" " * indent,
        subsequent_indent=" " * (indent + (4 if entry else 0)),
        break_long_words=False,
        break_on_hyphens=False,
    )
    if text.startswith('"""') and text.endswith('"""') and len(text) > 6:
        wrapped = textwrap.wrap(
            text[:-3], width=limit, initial_indent=" " * indent, subsequent_indent=" " * indent,
            break_long_words=False, break_on_hyphens=False,
        )  # fmt: skip
        closing = True
    return wrapped + ([" " * indent + '"""'] if closing else []), end


def wrap_docstrings(source: str, limit: int) -> str:
    """Re-wrap the paragraphs of docstrings that have a line too long."""
    try:
        tree = ast.parse(python_part(source))
    except SyntaxError:
        return source
    lines = source.split("\n")
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
                if isinstance(first.value.value, str):
                    spans.append((first.lineno, first.end_lineno))
    for start, end in sorted(spans, reverse=True):
        block, new, index = lines[start - 1 : end], [], 0
        while index < len(block):
            if len(block[index]) > limit:
                paragraph, index = reflow(block, index, limit)
                new += paragraph
            else:
                new.append(block[index])
                index += 1
        lines[start - 1 : end] = new
    return "\n".join(lines)


def ruff_format(sources: list[str], limit: int) -> list[str]:
    """``ruff format`` each source as a notebook cell (magics and a final ``;`` survive)."""
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder) / "cells.ipynb"
        cells = [
            {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}
            for source in sources
        ]
        notebook = {"cells": cells, "metadata": {"language_info": {"name": "python"}}, "nbformat": 4,
                    "nbformat_minor": 5}  # fmt: skip
        scratch.write_text(json.dumps(notebook), encoding="utf-8")
        command = [ruff(), "format", "--quiet", "--isolated", "--line-length", str(limit), str(scratch)]
        subprocess.run(command, check=False)
        formatted = json.loads(scratch.read_text(encoding="utf-8"))["cells"]
    out = []
    for cell in formatted:
        source = cell["source"]
        out.append(("".join(source) if isinstance(source, list) else source).rstrip("\n"))
    return out


def wrap(sources: list[str], limit: int) -> list[str]:
    """The whole treatment, on sources that have a line too long."""
    sources = [drop_fmt_skip(lift_comments(source, limit), limit) for source in sources]
    sources = ruff_format(sources, limit)
    sources = [split_strings(merge_strings(source), limit) for source in sources]
    sources = ruff_format(sources, limit)
    return [wrap_docstrings(wrap_comments(source, limit), limit) for source in sources]


def format_cells(path: Path) -> None:
    notebook = jupytext.read(path)
    cells = [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code"
        and "colab-setup" not in cell.metadata.get("tags", [])
        and (too_long(cell.source, MAX_LINE) or merge_strings(cell.source) != cell.source)
    ]
    if not cells:
        return
    for cell, source in zip(cells, wrap([cell.source for cell in cells], MAX_LINE)):
        cell.source = source
    jupytext.write(notebook, path, fmt="md:myst")


def format_includes(path: Path) -> None:
    page = parse(path)
    for fence in page.fences:
        if fence.name != "literalinclude":
            continue
        target, options = include_target(page, fence)
        if "pyobject" not in options or not target.exists():
            continue
        first, last = pyobject_span(target, options["pyobject"])
        lines = target.read_text(encoding="utf-8").split("\n")
        block = lines[first - 1 : last]
        indent = len(block[0]) - len(block[0].lstrip())
        limit = MAX_LINE - indent + int(options.get("dedent", 0) or 0)
        dedented = [line[indent:] for line in block]
        if not any(len(line) > limit for line in dedented) and merge_strings(
            "\n".join(dedented)
        ) == "\n".join(dedented):
            continue
        (source,) = wrap(["\n".join(dedented)], limit)
        lines[first - 1 : last] = [" " * indent + line if line else line for line in source.split("\n")]
        target.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str]) -> None:
    package = "--package" in argv
    for name in (arg for arg in argv if not arg.startswith("--")):
        path = Path(name)
        format_cells(path)
        if package:
            format_includes(path)
        for fence in parse(path).fences:
            body, header = cell_body(fence)
            if fence.name in {"code-cell", "python", "code"} and "colab-setup" not in header:
                for number, line in body:
                    if len(line) > MAX_LINE:
                        print(f"{path}:{number}: still {len(line)} characters: wrap by hand")


if __name__ == "__main__":
    main(sys.argv[1:])
