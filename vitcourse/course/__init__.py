"""The course itself: its rules as data and the project template.

* :mod:`.rules`: ``rules.yaml`` (deadlines, TPs, rubric, grade weights, late penalty,
  schedule; both editions of the slides, the current one named once) as dataclasses;
* :mod:`.render`: the same rules as the book's Markdown (chapters 1 and 8);
* :mod:`.newproject`: ``vitcourse new-project``, a course project from the packaged
  Cookiecutter template (``vitcourse/templates/project``).
"""

from .rules import Edition, RulesError, current_key, editions, load

__all__ = ["Edition", "RulesError", "current_key", "editions", "load"]
