"""Graded TPs: instant feedback for students, batch grading for instructors.

A TP is written once, as a solved notebook whose student parts sit between
``# BEGIN SOLUTION`` / ``# END SOLUTION`` lines; :mod:`vitcourse.grading.build` makes the
student notebook (stubs instead of solutions) and the TP's page of the book.

* Students call :func:`check` in their notebook: ``check("tp1.learned_pos",
  LearnedPositionalEmbedding)`` compares their code with the course's reference
  implementation and says, in Spanish, what was expected and what came.
* Instructors run ``vitcourse grade exercises/tp1 entregas/*.ipynb --out notas.csv``
  (:mod:`vitcourse.grading.grader`): every submission runs in a fresh kernel, its
  definitions are tested in separate processes, all of them isolated by the operating
  system (:mod:`vitcourse.grading.isolation`), and each student gets a feedback file.

The checks of each TP live in ``vitcourse/grading/<tp>.py`` (:mod:`.registry`).
"""

from importlib import import_module

# Imported on first use, so the grader's helper processes (notebook runner, sandbox)
# start without loading torch when they don't need it.
_EXPORTS = {
    "check": ".checking",
    "evaluate": ".checking",
    "parameter_shapes": ".probes",
    "seeded": ".probes",
    "set_parameters": ".probes",
    "to_wire": ".probes",
    "Assignment": ".registry",
    "Definition": ".registry",
    "Variable": ".registry",
    "get_assignment": ".registry",
    "get_part": ".registry",
    "load_private_tests": ".registry",
    "PartResult": ".results",
    "TestResult": ".results",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Assignment",
    "Definition",
    "PartResult",
    "TestResult",
    "Variable",
    "check",
    "evaluate",
    "get_assignment",
    "get_part",
    "load_private_tests",
    "parameter_shapes",
    "seeded",
    "set_parameters",
    "to_wire",
]
