"""The course's rules as the book prints them: Markdown rendered from ``rules.yaml``.

Chapter 1 shows the current edition's schedule and evaluation
(:func:`schedule_markdown`, :func:`evaluation_markdown`); chapter 8 adds the rubric
(:func:`rubric_markdown`) and what changed between editions (:func:`compare_markdown`).
The strings are MyST Markdown (the book renders printed Markdown as MyST), in Spanish;
:func:`show` displays them in a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping

from .rules import Edition, ScheduleOption

__all__ = [
    "compare_markdown",
    "evaluation_markdown",
    "grade_formula",
    "percent",
    "percent_spread",
    "rubric_markdown",
    "schedule_markdown",
    "show",
]

THIN = "\u202f"  # before % and between thousands (book/ESTILO.md)


def percent(fraction: float, digits: int = 0, sign: bool = False) -> str:
    """``0.25`` → ``"25 %"`` with the thin space the book puts before the sign.

    ``sign=True`` writes a difference with its sign, ``+``: ``0.012`` → ``"+1.2 %"``.
    """
    return f"{100 * fraction:{'+' if sign else ''}.{digits}f}{THIN}%"


def percent_spread(summary: Mapping[str, float], digits: int = 1) -> str:
    """``{"mean": 0.734, "std": 0.005}`` → ``"73.4 ± 0.5 %"``: a result over seeds, as the book
    writes it (``experiments.seed_summary`` gives the dict)."""
    return f"{100 * summary['mean']:.{digits}f} ± {100 * summary['std']:.{digits}f}{THIN}%"


def _number(value: float) -> str:
    """``0.4`` → ``"0.4"``, ``2.0`` → ``"2"``: as short as the value allows, decimal point."""
    return f"{value:g}"


def _minutes(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" if not rest else f"{hours} h {rest} min"


def _join(items: list[str]) -> str:
    """Spanish enumeration: ``a``, ``a y b``, ``a, b y c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " y " + items[-1]


def _inherited_note(edition: Edition, field: str) -> str:
    if field not in edition.inherited:
        return ""
    base = edition.based_on_label
    where = f"de las {base[0].lower()}{base[1:]}" if base else "de la edición anterior"
    return f" (regla {where}, que esta edición no repite)"


def _option_row(option: ScheduleOption) -> str:
    blocks = " → ".join(f"{block.activity} {_minutes(block.minutes)}" for block in option.blocks)
    work = option.total_minutes - option.minutes_of("Recreo")
    return f"| {option.name} | {blocks} | {_minutes(work)} | {_minutes(option.total_minutes)} |"


def schedule_markdown(edition: Edition) -> str:
    """The options for splitting a class into theory, practice and breaks, as a table.

    Args:
        edition: the rules (:func:`vitcourse.course.rules.load`).

    Returns:
        MyST Markdown: one sentence and one table row per option.
    """
    totals = sorted({option.total_minutes for option in edition.schedule})
    span = _minutes(totals[0]) if len(totals) == 1 else f"entre {_minutes(totals[0])} y {_minutes(totals[-1])}"
    lines = [
        (
            f"Cada clase dura {span}, en bloques de teoría y de teoría/práctica separados por recreos; "
            f"el cronograma admite {len(edition.schedule)} organizaciones{_inherited_note(edition, 'schedule')}:"
        ),
        "",
        "| Organización | Bloques, en orden | Teoría y práctica | Total |",
        "|---|---|---|---|",
        *(_option_row(option) for option in edition.schedule),
    ]
    return "\n".join(lines)


def _exercises_sentence(edition: Edition) -> str:
    dated = [f"el {e.number} antes de la clase {e.due_before_class}" for e in edition.exercises if not e.optional]
    optional = [f"el {e.number}" for e in edition.exercises if e.optional]
    parts = [_join(dated)] if dated else []
    if optional:
        parts.append(f"{_join(optional)}, {'opcional' if len(optional) == 1 else 'opcionales'}")
    return f"**Trabajos prácticos** ({edition.practicals_work}es): se entregan " + "; ".join(parts) + "."


def grade_formula(edition: Edition) -> str:
    r"""The final grade as display math: ``Evaluación Global = 0.4 · Prácticas + 0.6 · Proyecto``."""
    return (
        "$$\n\\text{Evaluación Global} = "
        f"{_number(edition.weight_practicals)} \\cdot \\text{{Prácticas}} + "
        f"{_number(edition.weight_project)} \\cdot \\text{{Proyecto}}\n$$"
    )


def rubric_markdown(edition: Edition) -> str:
    """The project's rubric as a table: criterion, weight, what is assessed."""
    lines = ["| Criterio | Peso | Qué se evalúa |", "|---|---|---|"]
    for criterion in edition.rubric:
        lines.append(f"| {criterion.name} | {percent(criterion.weight)} | {criterion.description or '—'} |")
    return "\n".join(lines)


def evaluation_markdown(edition: Edition) -> str:
    """How the course is graded: TPs, the project and its deadline, the rubric, the formula, lateness.

    Args:
        edition: the rules.

    Returns:
        MyST Markdown (paragraphs, a list, a table and display math).
    """
    project = edition.project
    deliverables = "\n".join(f"- {item}" for item in project.deliverables)
    weights = {percent(c.weight) for c in edition.rubric}
    equal = f"de igual peso ({weights.pop()} cada uno)" if len(weights) == 1 else "con los pesos de la tabla"
    penalty = _number(edition.late_penalty_points)
    return "\n".join(
        [
            _exercises_sentence(edition),
            "",
            f"**Proyecto** ({project.work}, obligatorio): se entrega",
            "",
            deliverables,
            (
                f"- Una presentación final de {project.presentation_minutes} minutos que muestre "
                f"{project.presentation_shows}."
            ),
            "",
            (
                f"El código y el informe se entregan a más tardar **{project.due.text()}**. "
                f"El proyecto se califica con {len(edition.rubric)} criterios {equal}:"
            ),
            "",
            rubric_markdown(edition),
            "",
            "La nota final es",
            "",
            grade_formula(edition),
            "",
            f"y una entrega tardía resta {penalty} puntos{_inherited_note(edition, 'late_penalty_points')}.",
            "",
            f"Fuente: {edition.label.lower()} (edición `{edition.key}` de `vitcourse/course/rules.yaml`).",
        ]
    )


def _row_values(edition: Edition) -> dict[str, str]:
    exercises = []
    for e in edition.exercises:
        exercises.append(
            f"TP{e.number}: opcional" if e.optional else f"TP{e.number}: antes de la clase {e.due_before_class}"
        )
    return {
        "Trabajos prácticos": "<br>".join(exercises),
        "Entrega del proyecto": edition.project.due.text(),
        "Qué se entrega": "<br>".join(edition.project.deliverables),
        "Rúbrica": "<br>".join(f"{c.name} ({percent(c.weight)})" for c in edition.rubric),
        "Nota final": f"{_number(edition.weight_practicals)} · Prácticas + {_number(edition.weight_project)} · Proyecto",
        "Entrega tardía": f"−{_number(edition.late_penalty_points)} puntos",
        "Cronograma": "<br>".join(f"{o.name}: {_minutes(o.total_minutes)}" for o in edition.schedule),
    }


_INHERITABLE_ROWS = {"Entrega tardía": "late_penalty_points", "Cronograma": "schedule"}


def compare_markdown(all_editions: Mapping[str, Edition], current: str) -> str:
    """What each edition says, side by side, rows that differ marked; the current one named.

    Args:
        all_editions: ``{key: Edition}`` (:func:`vitcourse.course.rules.editions`).
        current: the key of the current edition.

    Returns:
        A MyST Markdown table, one column per edition; a value an edition inherits reads
        "(no se repite)"; rows whose values differ start with "≠".
    """
    keys = list(all_editions)
    values = {key: _row_values(all_editions[key]) for key in keys}
    header = (
        "| | "
        + " | ".join(all_editions[key].label + (" **(vigente)**" if key == current else "") for key in keys)
        + " |"
    )
    lines = [header, "|---" * (len(keys) + 1) + "|"]
    for row in values[keys[0]]:
        cells = []
        for key in keys:
            text = values[key][row]
            if _INHERITABLE_ROWS.get(row) in all_editions[key].inherited:
                text += " (no se repite: heredada)"
            cells.append(text)
        differs = len({values[key][row] for key in keys}) > 1
        lines.append(f"| {'≠ ' if differs else ''}{row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def show(markdown: str) -> None:
    """Display Markdown in a notebook (rendered as MyST in the book), or print it elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        print(markdown)
        return
    if get_ipython() is None:
        print(markdown)
    else:
        display(Markdown(markdown))
