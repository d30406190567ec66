"""The book's mechanical conventions (book/ESTILO.md), checked on every page and TP source.

Every chapter (``book/*.md``), TP page (``book/tps/*.md``) and TP source
(``exercises/*/*.md``) is read as MyST: the prose (what the reader sees as text: not
code cells, code fences, math, inline code, URLs, cross-reference targets) is checked
for the spelling, number and term rules; the code cells, and every package object a
page shows with ``{literalinclude}``, for line length. New files are picked up by the
globs, so a new chapter is checked the moment it exists.

A failure lists one line per violation: ``file:line: [rule] what was found -> the fix``.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
GLOSSARY = BOOK / "glosario.md"
ESTILO = BOOK / "ESTILO.md"
MAX_LINE = 88


def pages() -> list[Path]:
    """Every page and TP source the conventions apply to (ESTILO.md itself quotes the forbidden forms)."""
    files = [*BOOK.glob("*.md"), *BOOK.glob("tps/*.md"), *ROOT.glob("exercises/*/*.md")]
    return sorted(path for path in files if path != ESTILO)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# --------------------------------------------------------------------------------------
# Reading a MyST page: prose lines and code lines, each with its line number.
# --------------------------------------------------------------------------------------

# Fences whose content is not prose: code, math, includes, raw output.
CODE_DIRECTIVES = {
    "code-cell", "code", "code-block", "sourcecode", "literalinclude", "math", "raw",
    "eval-rst", "bibliography", "tableofcontents", "mermaid", "glue", "glue:figure",
    "glue:any", "glue:math",
}  # fmt: skip
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
OPTION = re.compile(r"^\s*:[\w-]+:")


@dataclass
class Fence:
    char: str
    length: int
    name: str  # directive name ("code-cell", "note") or language ("python", "")
    code: bool
    start: int  # line number of the opening fence
    lines: list[tuple[int, str]]
    info: str = ""  # what follows the opening fence: "{literalinclude} ../vitcourse/x.py"


@dataclass
class Page:
    path: Path
    prose: list[tuple[int, str]]  # (line number, raw prose line)
    fences: list[Fence]  # every code fence, with its content lines
    glossary_terms: list[tuple[int, str]]  # headword lines inside {glossary}


def parse(path: Path) -> Page:
    """Split a MyST page into prose lines and code fences (front matter, comments skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = Page(path, [], [], [])
    stack: list[Fence] = []
    in_front_matter = bool(lines) and lines[0].strip() == "---"
    in_comment = in_display_math = False
    for number, line in enumerate(lines, start=1):
        if in_front_matter:
            if number > 1 and line.strip() == "---":
                in_front_matter = False
            continue
        match = FENCE.match(line)
        top = stack[-1] if stack else None
        if match and top is not None:
            fence, info = match["fence"], match["info"].strip()
            if fence[0] == top.char and len(fence) >= top.length and not info:
                stack.pop()
                continue
        if top is not None and top.code:
            top.lines.append((number, line))
            continue
        if match:
            fence, info = match["fence"], match["info"].strip()
            directive = re.match(r"\{([\w:-]+)\}", info)
            name = directive[1] if directive else (info.split() or [""])[0]
            code = name in CODE_DIRECTIVES if directive else fence[0] != ":"
            new = Fence(fence[0], len(fence), name, code, number, [], info)
            stack.append(new)
            if code:
                page.fences.append(new)
            elif directive and info[directive.end() :].strip() and name not in {"figure", "image"}:
                page.prose.append((number, info[directive.end() :]))  # an admonition's title
            continue
        stripped = line.strip()
        if in_comment:
            in_comment = "-->" not in line
            continue
        if stripped.startswith("<!--"):
            in_comment = "-->" not in line
            continue
        if stripped.startswith("+++") or re.fullmatch(r"\(.+\)=", stripped):
            continue
        if stripped == "$$" or (stripped.startswith("$$") and stripped.count("$$") == 1):
            in_display_math = not in_display_math
            continue
        if in_display_math:
            if stripped.endswith("$$"):
                in_display_math = False
            continue
        if top is not None and OPTION.match(line) and not any(n > top.start for n, _ in page.prose[-1:]):
            continue  # a directive's options (:name:, :class:) come before its content
        if top is not None and top.name == "glossary" and line and not line[0].isspace():
            page.glossary_terms.append((number, line))
            continue
        page.prose.append((number, line))
    return page


ROLE = re.compile(r"\{(?P<role>[\w:-]+)\}(?P<ticks>`+)(?P<body>.*?)(?P=ticks)", re.DOTALL)
TEXT_ROLES = {"term", "ref", "doc", "numref", "abbr", "download"}


def visible_text(line: str) -> str:
    """What the reader sees of a prose line, less code, math, URLs and reference targets.

    Roles keep their display text when they have one (``{term}`tokens <token>``` -> ``tokens``),
    citations and glued values disappear, as do inline code, ``$math$`` and URLs.
    """

    def role(match: re.Match) -> str:
        if match["role"] not in TEXT_ROLES:
            return " "
        body = match["body"]
        return re.sub(r"\s*<[^<>]*>$", "", body) if body.endswith(">") else body

    line = ROLE.sub(role, line)
    line = re.sub(r"(`+).*?\1", " ", line)  # inline code
    line = re.sub(r"\$\$.*?\$\$|\$[^$]+\$", " ", line)  # inline math
    line = re.sub(r"\]\([^)]*\)", "]", line)  # a link's target
    line = re.sub(r"<https?://[^>]*>|https?://\S+|\bwww\.\S+", " ", line)
    line = re.sub(r"<[^>]+>", " ", line)  # inline HTML tags
    return line


def without_italics(text: str) -> str:
    """Text with ``*italic*`` and ``_italic_`` spans removed (English terms are written in italics)."""
    text = re.sub(r"(?<![*\w])\*(?!\*)[^*]+?(?<!\*)\*(?![*\w])", " ", text)
    return re.sub(r"(?<![_\w])_(?!_)[^_]+?_(?![_\w])", " ", text)


PAGES = {path: parse(path) for path in pages()}


def caption_lines(page: Page):
    """Figure captions and alt texts from code cells' ``mystnb`` headers: the reader sees them."""
    for fence in page.fences:
        if fence.name != "code-cell":
            continue
        _, header = cell_body(fence)
        if not header:
            continue
        lines = [(n, line) for n, line in fence.lines[: len(header.splitlines())]]
        inside = None  # indentation of the caption/alt key being read
        for number, line in lines:
            key = re.match(r"^(\s*)(caption|alt):\s?(.*)$", line)
            depth = len(line) - len(line.lstrip())
            if key:
                inside = len(key[1])
                yield number, key[3]
            elif inside is not None and line.strip() and depth > inside:
                yield number, line
            else:
                inside = None


def prose_lines(page: Page):
    for number, line in [*page.prose, *caption_lines(page)]:
        yield number, visible_text(line)


# --------------------------------------------------------------------------------------
# The rules. Each yields (line, found, fix).
# --------------------------------------------------------------------------------------

ACCENTED = {
    "sólo": "solo", "éste": "este", "ésta": "esta", "éstos": "estos", "éstas": "estas",
    "ése": "ese", "ésa": "esa", "ésos": "esos", "ésas": "esas", "aquél": "aquel",
    "aquélla": "aquella", "aquéllos": "aquellos", "aquéllas": "aquellas",
}  # fmt: skip
ACCENTED_RE = re.compile(r"\b(" + "|".join(ACCENTED) + r")\b", re.IGNORECASE)


def accents(page: Page):
    for number, text in prose_lines(page):
        for match in ACCENTED_RE.finditer(text):
            word = match[1]
            fix = ACCENTED[word.lower()]
            yield number, word, f"write '{fix.capitalize() if word[0].isupper() else fix}' (RAE 2010)"


THIN = "\u202f"
COMMA_NUMBER = re.compile(r"(?<![\w.,])\d+(?:,\d+)+(?![\w,])")
DOTTED_THOUSANDS = re.compile(r"(?<![\w.,])[1-9]\d{0,2}(?:\.\d{3})+(?![\w.])")
SPACED_THOUSANDS = re.compile(r"(?<![\w.,\u202f])\d{1,3}(?:[ \u00a0\u2009]\d{3})+(?![\w.,\u202f])")


def numbers(page: Page):
    for number, text in prose_lines(page):
        for match in COMMA_NUMBER.finditer(text):
            found = match[0]
            groups = found.split(",")
            if all(len(g) == 3 for g in groups[1:]) and len(groups[0]) <= 3:
                fix = "thousands with U+202F (vitcourse.book.thousands): " + THIN.join(groups)
            else:
                fix = "a decimal point (" + ".".join(groups) + ") or a list with spaces after commas"
            yield number, found, fix
        for match in DOTTED_THOUSANDS.finditer(text):
            fixed = match[0].replace(".", THIN)
            yield number, match[0], f"thousands with U+202F, not a point: {fixed!r} (a decimal: glue it)"
        for match in SPACED_THOUSANDS.finditer(text):
            found = match[0]
            fixed = re.sub(r"[ \u00a0\u2009]", THIN, found)
            yield number, repr(found), f"thousands with U+202F, not a plain space: {fixed!r}"
    for fence in page.fences:
        if fence.name != "code-cell":
            continue
        for number, line in fence.lines:
            for literal in re.findall(r"\"[^\"]*\"|'[^']*'", line):
                for match in re.finditer(r"(?<![\w.,(\[{])\d+,\d+", literal):
                    fix = match[0].replace(",", ".")
                    yield number, match[0], f"a printed number: decimal point ({fix}), as the code prints"


BYTE_UNIT = re.compile(r"(?<![\w-])(\d+(?:\.\d+)?\s*|\s)?(kB|KB|MB|GB|TB)\b")
BINARY = {"kB": "KiB", "KB": "KiB", "MB": "MiB", "GB": "GiB", "TB": "TiB"}


def units(page: Page):
    for number, text in prose_lines(page):
        for match in BYTE_UNIT.finditer(text):
            yield number, match[2], f"binary units: {BINARY[match[2]]} (1024-based, ESTILO.md)"
    for fence in page.fences:
        if fence.name != "code-cell":
            continue
        for number, line in fence.lines:
            for literal in re.findall(r"\"[^\"]*\"|'[^']*'", line):
                for unit in re.findall(r"\b(kB|KB|MB|GB|TB)\b", literal):
                    yield number, unit, f"a printed unit: write {BINARY[unit]}"


CALQUES = {
    r"verdad(es)? (del|de) terreno": "etiqueta de referencia (o anotación humana)",
    r"verdad(es)? fundamental(es)?": "etiqueta de referencia (o anotación humana)",
    r"performance": "desempeño o rendimiento",
}


def own_words(page: Page):
    """Prose lines less block quotations (``> ...``: the course's words, quoted as they are)."""
    for number, text in prose_lines(page):
        if not re.match(r"\s*>", text):
            yield number, text


# A sentence about the machine that built the book (ESTILO.md: the book is read anywhere).
MACHINE = re.compile(
    r"(CPU|máquina|computadora|servidor|VM)\b[^.;]{0,60}?\b(que|con que|donde|en la que)\s+"
    r"(se\s+)?(construye|construyó|arma|armó|compila|compiló)\s+(este|el)\s+libro",
    re.IGNORECASE,
)


def machine(page: Page):
    """Whole paragraphs (a sentence may span lines) and the strings code cells print."""
    paragraph: list[tuple[int, str]] = []
    for number, text in [*prose_lines(page), (None, "")]:
        if text.strip():
            paragraph.append((number, text))
            continue
        joined = " ".join(line for _, line in paragraph)
        for match in MACHINE.finditer(joined):
            yield paragraph[0][0], match[0], "no sentence about the machine that built the book (ESTILO.md)"
        paragraph = []
    for fence in page.fences:
        if fence.name == "code-cell":
            for number, line in fence.lines:
                for match in MACHINE.finditer(line):
                    yield number, match[0], "no printed sentence about the machine that built the book"


def calques(page: Page):
    for number, text in own_words(page):
        for pattern, fix in CALQUES.items():
            for match in re.finditer(rf"\b{pattern}\b", without_italics(text), re.IGNORECASE):
                yield number, match[0], f"a calque: write '{fix}'"


# One term per concept: ESTILO.md's table, concept -> (forbidden pattern, what to write).
# An English term is allowed in italics (the glossary's "incrustación (*embedding*)").
TERMS = {
    "accuracy": (r"aciertos?|accuracy", "exactitud"),
    "precision": (r"sensibilidad(es)?|precision|recall", "precisión; exhaustividad (*recall*)"),
    "batch": (r"batch(es)?|tandas?", "lote"),
    "augmentation": (r"aumentaci[oó]n(es)?", "aumento de datos"),
    "epoch": (r"epochs?", "época"),
    "fine-tuning": (r"fine-?tun\w*|afinad[oa]s?", "ajuste fino"),
    "embedding": (r"embeddings?|embebid[oa]s?", "incrustación (*embedding* in italics the first time)"),
    "encoder": (r"encoders?|decoders?", "codificador / decodificador"),
    "checkpoint": (r"checkpoints?", "punto de control (*checkpoint*)"),
    "dataset": (r"datasets?|data sets?", "conjunto de datos"),
    "token": (r"fichas?", "token"),
    "patch": (r"patch(es)?", "parche"),
    "prompt": (r"prompts?|indicaci[oó]n(es)?", "*prompt* (in italics)"),
    "threshold": (r"thresholds?", "umbral"),
    "loss": (r"loss(es)?", "pérdida"),
    "head": (r"heads?", "cabeza"),
}


def terms(page: Page):
    for number, text in own_words(page):
        plain = without_italics(text)
        for pattern, fix in TERMS.values():
            for match in re.finditer(rf"(?<![\w-])(?:{pattern})(?![\w])", plain, re.IGNORECASE):
                yield number, match[0], f"the glossary's term: {fix} (ESTILO.md)"


GLUE_IN_BOLD = re.compile(r"\*\*(?:(?!\*\*).)*?\{glue(?::\w+)?\}`[^`]+`(?:(?!\*\*).)*?\*\*")


def glued_bold(page: Page):
    for number, line in page.prose:
        for match in GLUE_IN_BOLD.finditer(line):
            yield number, match[0], "no glued value in bold: bold is for terms being defined"
    for fence in page.fences:
        for number, line in fence.lines:
            if fence.name == "code-cell" and re.search(r"\bglue\(.*([\"'])[^\"']*\*\*[^\"']*\1", line):
                yield number, line.strip(), "a glued string must not carry **bold**"


# A format spec with a "," grouping option: f"{n:,}", "{:,.0f}".format(n), format(n, ",").
THOUSANDS_SPEC = re.compile(r":[^{}:'\"]?[<>=^]?[+\- ]?#?0?\d*,(\.\d+)?[dfgn%]?\}|format\([^()]*,\s*['\"],")


def printed_thousands(page: Page):
    for fence in page.fences:
        if fence.name != "code-cell":
            continue
        for number, line in fence.lines:
            if THOUSANDS_SPEC.search(line):
                yield number, line.strip(), "print thousands with vitcourse.book.thousands(n)"
            if re.match(r"\s*def thousands\(", line):
                yield number, line.strip(), "import it: from vitcourse.book import thousands"


# Percentages (ESTILO.md): "92.3 %", U+202F before the sign. Python's "%" format type and a
# "%" typed after a number print "92.3%" or a breakable plain space; the code prints them with
# vitcourse.course.render.percent / percent_spread, the prose glues what those return.
PERCENT_SPEC = re.compile(
    r"\{[^{}]*:[^{}:'\"]*%\}"  # f"{x:.1%}", "{:.0%}".format(x), Styler.format("{:+.1%}")
    r"|format\([^()]*,\s*['\"][^'\"]*%['\"]"  # format(x, ".1%")
    r"|\d*[dfg]\}[ \u00a0]?%"  # f"{100 * x:.1f}%", f"{x:.0f} %"
    r"|tickformat\s*[=:]\s*['\"][^'\"]*%|PercentFormatter"  # plot axes in percent
)
PRINTED_PERCENT = re.compile(r"\d[ \u00a0]?%(?![\w{(%])")  # "50 %" or "50%" in a string literal
GLUED_PERCENT = re.compile(r"\{glue(?::text)?\}`[^`:]+:[^`]*%`")  # {glue:text}`acc:.1%`
PROSE_PERCENT = re.compile(r"\d[ \u00a0\u2009]?%")  # "50 %", "50%", {glue:text}`acc` % (glued: "0 %")
PERCENT_FIX = "U+202F before %: vitcourse.course.render.percent(fraction, digits) (ESTILO.md)"

GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`[^`]*`")


def without_comment(line: str) -> str:
    """A code line less its ``# comment`` (a ``#`` inside a string literal stays)."""
    quote = None
    for index, char in enumerate(line):
        if quote is None and char == "#":
            return line[:index]
        if char in "\"'" and (quote is None or quote == char):
            quote = char if quote is None else None
    return line


def percents(page: Page):
    for number, line in page.prose:
        for match in GLUED_PERCENT.finditer(line):
            yield number, match[0], "glue the text: glue(name, percent(value, digits))"
    for number, line in [*page.prose, *caption_lines(page)]:
        text = visible_text(GLUE_ROLE.sub("0", line))  # a glued number is a number
        for match in PROSE_PERCENT.finditer(text):
            yield number, repr(match[0]), f"write U+202F before % ({THIN!r})"


def printed_percents(page: Page):
    for fence in page.fences:
        if fence.name != "code-cell":
            continue
        for number, line in fence.lines:
            line = without_comment(line)
            if line.lstrip().startswith(('"""', "'''")):
                continue  # a docstring: not printed
            if PERCENT_SPEC.search(line):
                yield number, line.strip(), PERCENT_FIX
                continue
            for literal in re.findall(r"\"[^\"]*\"|'[^']*'", line):
                if PRINTED_PERCENT.search(literal):
                    yield number, literal, PERCENT_FIX


def cell_body(fence: Fence) -> tuple[list[tuple[int, str]], str]:
    """A code cell's code lines (less its ``:option:`` lines or ``---`` YAML header) and header."""
    lines = list(fence.lines)
    header = []
    if lines and lines[0][1].strip() == "---":
        end = next((i for i, (_, line) in enumerate(lines[1:], 1) if line.strip() == "---"), 0)
        header, lines = lines[: end + 1], lines[end + 1 :]
    while lines and OPTION.match(lines[0][1]):
        header.append(lines.pop(0))
    return lines, "\n".join(line for _, line in header)


# Fences that show no code: math, included files (checked apart), printed output.
NOT_CODE = {"math", "raw", "bibliography", "tableofcontents", "literalinclude", "text", "console"}


def code_lines(page: Page):
    for fence in page.fences:
        if fence.name in NOT_CODE:
            continue
        body, header = cell_body(fence)
        if "colab-setup" in header:
            continue  # generated by vitcourse.notebooks, the same in every notebook
        for number, line in body:
            if len(line) > MAX_LINE:
                yield number, f"{len(line)} characters", f"wrap the code line at {MAX_LINE}"


def literalincludes(page: Page):
    for fence in page.fences:
        if fence.name != "literalinclude":
            continue
        target, options = include_target(page, fence)
        if not target.exists():
            yield fence.start, str(target), "the included file does not exist"
            continue
        dedent = int(options.get("dedent", 0) or 0)
        for number, line in included_lines(target, options):
            width = len(line) - min(dedent, len(line) - len(line.lstrip()))
            if width > MAX_LINE:
                yield (
                    fence.start,
                    f"{rel(target)}:{number} has {width} characters as shown",
                    f"wrap it at {MAX_LINE} in the package",
                )


def include_target(page: Page, fence: Fence) -> tuple[Path, dict[str, str]]:
    argument = re.sub(r"^\{literalinclude\}\s*", "", fence.info)
    options = {}
    for _, line in fence.lines:
        option = re.match(r"\s*:([\w-]+):\s*(.*)$", line)
        if option:
            options[option[1]] = option[2].strip()
    return (page.path.parent / argument).resolve(), options


def included_lines(path: Path, options: dict[str, str]) -> list[tuple[int, str]]:
    """The lines of ``path`` a literalinclude shows (``:pyobject:`` and ``:lines:`` resolved)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = list(enumerate(lines, start=1))
    if "pyobject" in options:
        first, last = pyobject_span(path, options["pyobject"])
        numbered = numbered[first - 1 : last]
    if "lines" in options:
        keep = set()
        for part in options["lines"].split(","):
            low, _, high = part.strip().partition("-")
            keep.update(range(int(low or 1), int(high or len(numbered)) + 1 if _ else int(low) + 1))
        numbered = [item for index, item in enumerate(numbered, start=1) if index in keep]
    return numbered


def pyobject_span(path: Path, dotted: str) -> tuple[int, int]:
    """First and last line of a (possibly nested: ``Class.method``) class or function."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    node = None
    for name in dotted.split("."):
        node = next(
            (
                item
                for item in body
                if isinstance(item, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and item.name == name
            ),
            None,
        )
        if node is None:
            raise LookupError(f"{rel(path)} has no {dotted} (a :pyobject: of the book)")
        body = node.body
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return first, node.end_lineno


RULES = {
    "accent": accents,
    "number": numbers,
    "unit": units,
    "calque": calques,
    "machine": machine,
    "term": terms,
    "glue-bold": glued_bold,
    "printed-thousands": printed_thousands,
    "percent": percents,
    "printed-percent": printed_percents,
    "code-line": code_lines,
    "literalinclude-line": literalincludes,
}


def report(rule: str) -> list[str]:
    found = []
    for path, page in PAGES.items():
        for number, what, fix in RULES[rule](page):
            found.append(f"{rel(path)}:{number}: [{rule}] {what} -> {fix}")
    return found


@pytest.mark.parametrize("rule", RULES)
def test_rule(rule):
    violations = report(rule)
    assert not violations, f"{len(violations)} violation(s) of book/ESTILO.md:\n" + "\n".join(violations)


def test_package_strings_follow_the_accent_rule():
    """What the package prints in Spanish (check verdicts, figure titles) is read too."""
    found = []
    for path in sorted([*ROOT.glob("vitcourse/**/*.py"), *ROOT.glob("benchmarks/*.py")]):
        text = path.read_text(encoding="utf-8")
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.STRING:
                continue
            for match in ACCENTED_RE.finditer(token.string):
                fix = ACCENTED[match[1].lower()]
                found.append(f"{rel(path)}:{token.start[0]}: [accent] {match[1]} -> write '{fix}' (RAE 2010)")
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------------------
# The glossary: every entry used somewhere, every reference to an existing entry.
# --------------------------------------------------------------------------------------


def glossary_entries() -> list[list[tuple[int, str]]]:
    """The glossary's entries, each the list of its headword lines (term and aliases)."""
    entries, current, previous = [], [], None
    for number, line in PAGES[GLOSSARY].glossary_terms:
        if previous is not None and number != previous + 1:
            entries.append(current)
            current = []
        current.append((number, line.strip()))
        previous = number
    return entries + ([current] if current else [])


def term_key(headword: str) -> str:
    return headword.strip("*_").strip().lower()


def used_terms() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for path, page in PAGES.items():
        if path == GLOSSARY:
            continue
        text = "\n".join(line for _, line in page.prose)  # a role may span two lines
        numbers = [number for number, _ in page.prose]
        for match in ROLE.finditer(text):
            if match["role"] == "term":
                body = " ".join(match["body"].split())
                target = re.search(r"<([^<>]*)>$", body)
                key = term_key(target[1] if target else body)
                number = numbers[text.count("\n", 0, match.start())]
                used.setdefault(key, []).append(f"{rel(path)}:{number}")
    return used


def test_every_glossary_entry_is_used():
    used = used_terms()
    unused = [
        f"{rel(GLOSSARY)}:{entry[0][0]}: [glossary-unused] '{entry[0][1]}' -> reference it with "
        f"{{term}}`{entry[0][1]}` where a chapter introduces it, or delete the entry"
        for entry in glossary_entries()
        if not any(term_key(headword) in used for _, headword in entry)
    ]
    assert not unused, "\n".join(unused)


def test_every_term_reference_has_an_entry():
    known = {term_key(headword) for entry in glossary_entries() for _, headword in entry}
    missing = [
        f"{where}: [glossary-missing] {{term}}`{key}` -> add the entry to book/glosario.md"
        for key, places in used_terms().items()
        if key not in known
        for where in places
    ]
    assert not missing, "\n".join(missing)


def test_every_term_of_estilo_has_a_check():
    table = re.findall(r"^\| \*([^*|]+)\*", ESTILO.read_text(encoding="utf-8"), re.MULTILINE)
    unchecked = [concept for concept in table if not any(key in concept for key in TERMS)]
    assert table and not unchecked, f"ESTILO.md rows without an entry in TERMS: {unchecked}"


# --------------------------------------------------------------------------------------
# The checker itself, on small pages.
# --------------------------------------------------------------------------------------


def check_text(tmp_path: Path, text: str, rule: str) -> list[tuple[int, str, str]]:
    page_path = tmp_path / "page.md"
    page_path.write_text(text, encoding="utf-8")
    return list(RULES[rule](parse(page_path)))


def test_prose_excludes_code_math_urls_and_targets(tmp_path):
    text = (
        "---\njupytext: {}\n---\n\n# Título\n\n"
        "Texto con `sólo_code` y $sólo$ y https://x.org/sólo y {cite}`sólo2020`.\n\n"
        "```{code-cell} ipython3\nx = 'sólo'\n```\n\n$$\n\\text{sólo}\n$$\n\n"
        "<!-- sólo un comentario -->\n"
        ":::{note}\nEsto es sólo prosa.\n:::\n"
    )
    found = check_text(tmp_path, text, "accent")
    assert [(number, word) for number, word, _ in found] == [(19, "sólo")]


def test_numbers_units_terms_and_bold_are_found(tmp_path):
    text = (
        "Son 38,416 números, 60 000 imágenes, 0,93 de exactitud y 38\u202f416 bien.\n"
        "Ocupan 150 KB; el *batch* en cursiva vale, el batch no, el fine-tuning tampoco.\n"
        "La **{glue:text}`phrase`** no va en negrita; {term}`tokens <token>` sí.\n"
    )
    numbers_found = [what for _, what, _ in check_text(tmp_path, text, "number")]
    assert numbers_found == ["38,416", "0,93", repr("60 000")]
    assert [what for _, what, _ in check_text(tmp_path, text, "unit")] == ["KB"]
    assert [what for _, what, _ in check_text(tmp_path, text, "term")] == ["batch", "fine-tuning"]
    assert [line for line, _, _ in check_text(tmp_path, text, "glue-bold")] == [3]


def test_code_lines_and_literalincludes(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "class A:\n    def short(self):\n        pass\n\n"
        "    def long(self):\n        x = '" + "y" * 90 + "'\n",
        encoding="utf-8",
    )
    text = (
        "```{literalinclude} module.py\n:pyobject: A.short\n:dedent: 4\n```\n\n"
        "```{literalinclude} module.py\n:pyobject: A.long\n:dedent: 4\n```\n\n"
        "```{code-cell} ipython3\n" + "z = 1  # " + "w" * 85 + "\n```\n"
    )
    assert [line for line, _, _ in check_text(tmp_path, text, "literalinclude-line")] == [6]
    assert [line for line, _, _ in check_text(tmp_path, text, "code-line")] == [12]


def test_new_chapters_are_checked():
    assert {path.name for path in pages()} >= {"01_transformers_imagenes.md", "tp1.md", "glosario.md"}
    assert all(path.suffix == ".md" for path in pages())


def test_sentences_about_the_building_machine_are_found_across_lines(tmp_path):
    text = (
        "En el perfil `smoke` (la CPU de dos núcleos que\nconstruye este libro) son chicos.\n\n"
        "El perfil con el que se construye este libro corre en CPU.\n"
    )
    assert [line for line, _, _ in check_text(tmp_path, text, "machine")] == [1]


def test_figure_captions_and_alt_texts_are_prose(tmp_path):
    text = (
        "```{code-cell} ipython3\n---\nmystnb:\n  figure:\n    caption: Un bloque del encoder,\n"
        "      sólo de ejemplo.\n    name: fig-x\n  image:\n    alt: Dos barras.\n---\nx = 'sólo'\n```\n"
    )
    assert [(line, what) for line, what, _ in check_text(tmp_path, text, "accent")] == [(6, "sólo")]
    assert [what for _, what, _ in check_text(tmp_path, text, "term")] == ["encoder"]


def test_percent_formats_are_found(tmp_path):
    thin = "\u202f"
    text = (
        "```{code-cell} ipython3\n"
        'print(f"{acc:.1%}")\n'  # 2
        'table.style.format("{:+.1%}")\n'  # 3
        'title = f"{100 * acc:.1f}%"\n'  # 4
        'title = f"{100 * acc:.0f} %"\n'  # 5
        'fig.update_yaxes(tickformat=".0%")\n'  # 6
        'label = "rollout, descartando el 90 %"\n'  # 7
        'print(f"{percent(acc, 1)}", f"{n:.1f} puntos")  # 73.4% in a comment\n'  # 8
        'table.style.format(lambda v: percent(v, 1), na_rep="—")\n'  # 9
        "```\n\n"
        "Acierta el {glue:text}`acc:.1%`, el {glue:text}`top1:.1f` % y el 90% de las veces;\n"  # 12
        f"el {{glue:text}}`acc_text`, el {{glue:text}}`top1:.1f`{thin}% y el 90{thin}% están bien.\n"
    )
    found = check_text(tmp_path, text, "printed-percent")
    assert [line for line, _, _ in found] == [2, 3, 4, 5, 6, 7]
    found = check_text(tmp_path, text, "percent")
    assert [(line, what) for line, what, _ in found] == [
        (12, "{glue:text}`acc:.1%`"),
        (12, repr("0 %")),
        (12, repr("0%")),
    ]
