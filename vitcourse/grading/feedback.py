"""The feedback file each student receives (Markdown, in Spanish).

It holds the grade, why the notebook run went the way it did, the verdict of every
test (what was expected, what came, a hint) and the student's written answers for the
instructor to grade. It names no times and no dates, so grading the same submission
twice writes the same file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import __version__

if TYPE_CHECKING:
    from .grader import SubmissionResult
    from .registry import Assignment

__all__ = ["STATUS_NAMES", "render_feedback"]

STATUS_NAMES = {
    "ok": "completo",
    "partial": "parcial",
    "error": "con errores",
    "timeout": "tiempo agotado",
    "invalid": "entrega inválida",
}


def _g(value: float) -> str:
    return f"{value:g}"


def _points(value: float) -> str:
    return f"{value:g} punto" if value == 1 else f"{value:g} puntos"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.strip().splitlines()) or "> _(vacía)_"


def _execution(result: SubmissionResult) -> list[str]:
    if result.status == "invalid":
        return [f"No se ejecutó: {result.detail}."]
    if not result.cells:
        return ["El notebook no se pudo ejecutar."]
    lines = []
    problems = [c for c in result.cells if c["status"] in ("error", "timeout")]
    not_run = [c for c in result.cells if c["status"] == "not-run"]
    if not problems and not not_run:
        lines.append(f"Se ejecutó completo ({len(result.cells)} celdas de código), sin errores.")
    for cell in problems:
        if cell["status"] == "timeout":
            lines.append(f"- Celda {cell['cell']}: superó el tiempo límite y se interrumpió.")
        else:
            lines.append(
                f"- Celda {cell['cell']}: `{cell.get('ename', '')}: {cell.get('evalue', '')}`".replace("\n", " ")
            )
    if not_run:
        lines.append(f"- {len(not_run)} celdas no llegaron a ejecutarse (desde la celda {not_run[0]['cell']}).")
    if result.truncated_output:
        lines.append("- El notebook imprimió demasiado: se guardó solo el principio de sus salidas.")
    for problem in result.sandbox_errors:
        lines.append(f"- Al probar tus definiciones por separado, {problem}")
    return lines


def render_feedback(result: SubmissionResult, assignment: Assignment, private_tests: list[str]) -> str:
    """The Markdown feedback of one graded submission."""
    auto = sum(p.points for p in assignment.auto_parts)
    manual = [p for p in assignment.parts if p.manual]
    lines = [
        f"# {assignment.title}: devolución de {result.student}",
        "",
        f"- **Entrega:** `{result.file}`" + (f" (sha256 `{result.sha256[:12]}`)" if result.sha256 else ""),
        f"- **Estado:** {STATUS_NAMES.get(result.status, result.status)} ({result.status}): {result.detail}",
        f"- **Puntaje automático:** {_g(result.total)} / {_g(auto)}"
        + (f" (más {_points(sum(p.points for p in manual))} que corrige el docente)" if manual else ""),
        "",
        "## Ejecución del notebook",
        "",
        *_execution(result),
        "",
        "## Partes",
        "",
    ]
    for part in result.parts:
        lines.append(part.to_markdown())
    if manual:
        lines += ["## Respuestas escritas (las corrige el docente)", ""]
        # One answer cell per manual part, in order, is the TP's layout; otherwise list them all.
        paired = len(result.answers) == len(manual)
        for index, part in enumerate(manual):
            lines += [f"### {part.key} · {part.title} ({_points(part.points)})", ""]
            if paired:
                cell, text = result.answers[index]
                lines += [f"Celda {cell}:", "", _quote(text), ""]
        if not paired:
            if result.answers:
                lines += ["Respuestas encontradas en el notebook:", ""]
                for cell, text in result.answers:
                    lines += [f"Celda {cell}:", "", _quote(text), ""]
            else:
                lines += ["_No se encontraron respuestas escritas en el notebook._", ""]
    lines += [
        "---",
        f"Corregido con vitcourse {__version__}: tests públicos"
        + (f" y {len(private_tests)} privados." if private_tests else "."),
        "",
    ]
    return "\n".join(lines)
