"""The course's rules as data: deadlines, TPs, the project rubric, the grade formula.

The slides of CEIA-ViT state the rules twice, and the two decks disagree (TP3 optional
or due before class 5; the project due the Friday after class 7 or the Monday before
class 8; two different rubrics). Both editions live in one YAML file, ``rules.yaml``
next to this module, which also names the ``current`` one; chapters 1 and 8 render
from it (:mod:`vitcourse.course.render`), so a change of edition is one line::

    from vitcourse.course import rules
    course = rules.load()                  # the current edition
    course.final_grade(8, {"Calidad del código": 9, ...})

An edition may be ``based_on`` another and restate only what changed; the fields it
inherits are listed in :attr:`Edition.inherited`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "Block",
    "Criterion",
    "Deadline",
    "Edition",
    "Exercise",
    "Project",
    "RulesError",
    "ScheduleOption",
    "current_key",
    "editions",
    "load",
]

FIELDS = ("label", "source", "practicals", "project", "rubric", "grade", "late_penalty_points", "schedule")


class RulesError(ValueError):
    """``rules.yaml`` is malformed: the message names the edition and the field."""


@dataclass(frozen=True)
class Exercise:
    """One practical exercise (TP): due before a class, or optional."""

    number: int
    due_before_class: int | None = None
    optional: bool = False


@dataclass(frozen=True)
class Deadline:
    """A deadline relative to a class: ``el viernes siguiente a la clase 7``."""

    weekday: str
    relation: str
    class_number: int

    def text(self) -> str:
        """The Spanish phrase, e.g. ``"el lunes anterior a la clase 8"``."""
        return f"el {self.weekday} {self.relation} la clase {self.class_number}"

    @property
    def week(self) -> float:
        """Position on a timeline of classes (class ``k`` at ``k``): a bit after or before it."""
        return self.class_number + (0.5 if self.relation.startswith("siguiente") else -0.3)


@dataclass(frozen=True)
class Project:
    """The group project: what is delivered, the presentation, the deadline."""

    work: str
    deliverables: tuple[str, ...]
    presentation_minutes: int
    presentation_shows: str
    due: Deadline


@dataclass(frozen=True)
class Criterion:
    """One criterion of the project's rubric, with its weight in the project grade."""

    name: str
    weight: float
    description: str | None = None


@dataclass(frozen=True)
class Block:
    """One block of a class: an activity and its minutes."""

    activity: str
    minutes: int


@dataclass(frozen=True)
class ScheduleOption:
    """One way to split a class into blocks."""

    name: str
    blocks: tuple[Block, ...]

    @property
    def total_minutes(self) -> int:
        """The whole class, breaks included."""
        return sum(block.minutes for block in self.blocks)

    def minutes_of(self, word: str) -> int:
        """Minutes of the blocks whose activity contains ``word`` (``"Teoría"``, ``"Práctica"``, ``"Recreo"``)."""
        return sum(block.minutes for block in self.blocks if word in block.activity)


@dataclass(frozen=True)
class Edition:
    """The rules of one edition of the course.

    Attributes:
        key: its name in ``rules.yaml``.
        label, source: which slides state it.
        practicals_work: ``"individual"``.
        exercises: the TPs.
        project: the group project.
        rubric: the project's criteria; their weights add up to 1.
        weight_practicals, weight_project: the final grade's weights (0.4 and 0.6).
        late_penalty_points: points a late delivery loses.
        schedule: the options for splitting a class.
        inherited: fields taken unchanged from the edition it is ``based_on``.
        based_on_label: that edition's label (``None`` if it has no ``based_on``).
    """

    key: str
    label: str
    source: str
    practicals_work: str
    exercises: tuple[Exercise, ...]
    project: Project
    rubric: tuple[Criterion, ...]
    weight_practicals: float
    weight_project: float
    late_penalty_points: float
    schedule: tuple[ScheduleOption, ...]
    inherited: tuple[str, ...] = ()
    based_on_label: str | None = None

    def criterion(self, name: str) -> Criterion:
        """The rubric criterion called ``name``."""
        for criterion in self.rubric:
            if criterion.name == name:
                return criterion
        raise KeyError(f"{self.key} has no criterion {name!r}; its rubric: {[c.name for c in self.rubric]}")

    def project_grade(self, scores: Mapping[str, float] | float) -> float:
        """The project's grade from one score (0 to 10) per rubric criterion, weighted.

        Args:
            scores: ``{criterion name: score}`` with every criterion of the rubric, or a
                single number (already the project grade).

        Returns:
            The weighted mean of the scores.
        """
        if not isinstance(scores, Mapping):
            return float(scores)
        names = [c.name for c in self.rubric]
        missing, unknown = sorted(set(names) - set(scores)), sorted(set(scores) - set(names))
        if missing or unknown:
            raise KeyError(
                f"scores must give one number per criterion of {self.key}'s rubric {names}; "
                f"missing {missing}, unknown {unknown}"
            )
        return sum(c.weight * float(scores[c.name]) for c in self.rubric)

    def final_grade(self, practicals: float, project: Mapping[str, float] | float, late_deliveries: int = 0) -> float:
        """``weight_practicals * practicals + weight_project * project - penalties``.

        Args:
            practicals: the TPs' grade, 0 to 10.
            project: the project's grade, or its scores per criterion.
            late_deliveries: how many deliveries came late; each costs
                :attr:`late_penalty_points` (the grade is not taken below 0).

        Returns:
            The final grade.
        """
        grade = self.weight_practicals * practicals + self.weight_project * self.project_grade(project)
        return max(0.0, grade - late_deliveries * self.late_penalty_points)

    @property
    def mandatory_exercises(self) -> tuple[Exercise, ...]:
        return tuple(e for e in self.exercises if not e.optional)


def _rules_path(path: str | Path | None) -> Path:
    if path is not None:
        return Path(path)
    return Path(str(resources.files("vitcourse.course") / "rules.yaml"))


def _read(path: str | Path | None) -> dict[str, Any]:
    file = _rules_path(path)
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("editions"), dict) or "current" not in data:
        raise RulesError(f"{file}: expected a mapping with 'current' and 'editions', got {type(data).__name__}")
    return data


def _resolve(key: str, raw: dict[str, Any], chain: tuple[str, ...] = ()) -> tuple[dict[str, Any], tuple[str, ...]]:
    """An edition's fields with those of its ``based_on`` filled in; and which were inherited."""
    if key not in raw:
        raise RulesError(f"unknown edition {key!r}; rules.yaml has {sorted(raw)}")
    if key in chain:
        raise RulesError(f"editions based on each other in a loop: {' -> '.join((*chain, key))}")
    own = dict(raw[key])
    unknown = sorted(set(own) - set(FIELDS) - {"based_on"})
    if unknown:
        raise RulesError(f"edition {key!r}: unknown field(s) {unknown}; allowed: {', '.join(FIELDS)}, based_on")
    parent = own.pop("based_on", None)
    if parent is None:
        return own, ()
    base, _ = _resolve(parent, raw, (*chain, key))
    inherited = tuple(name for name in FIELDS if name not in own and name in base)
    return {**base, **own}, inherited


def _need(fields: dict[str, Any], name: str, key: str) -> Any:
    if name not in fields:
        raise RulesError(f"edition {key!r} states no {name!r} (and inherits none)")
    return fields[name]


def _edition(key: str, raw: dict[str, Any]) -> Edition:
    fields, inherited = _resolve(key, raw)
    practicals = _need(fields, "practicals", key)
    project = _need(fields, "project", key)
    due = project["due"]
    rubric = tuple(Criterion(c["name"], float(c["weight"]), c.get("description")) for c in fields["rubric"])
    grade = _need(fields, "grade", key)
    edition = Edition(
        key=key,
        label=_need(fields, "label", key),
        source=_need(fields, "source", key),
        practicals_work=practicals["work"],
        exercises=tuple(Exercise(**exercise) for exercise in practicals["exercises"]),
        project=Project(
            work=project["work"],
            deliverables=tuple(project["deliverables"]),
            presentation_minutes=int(project["presentation"]["minutes"]),
            presentation_shows=project["presentation"]["shows"],
            due=Deadline(due["weekday"], due["relation"], int(due["class"])),
        ),
        rubric=rubric,
        weight_practicals=float(grade["practicals"]),
        weight_project=float(grade["project"]),
        late_penalty_points=float(_need(fields, "late_penalty_points", key)),
        schedule=tuple(
            ScheduleOption(option["name"], tuple(Block(**block) for block in option["blocks"]))
            for option in _need(fields, "schedule", key)
        ),
        inherited=inherited,
        based_on_label=raw[raw[key]["based_on"]].get("label") if "based_on" in raw[key] else None,
    )
    _check(edition)
    return edition


def _check(edition: Edition) -> None:
    total = sum(c.weight for c in edition.rubric)
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        raise RulesError(f"edition {edition.key!r}: the rubric's weights add up to {total}, expected 1")
    if not math.isclose(edition.weight_practicals + edition.weight_project, 1.0, abs_tol=1e-9):
        raise RulesError(
            f"edition {edition.key!r}: grade weights {edition.weight_practicals} + {edition.weight_project} "
            "must add up to 1"
        )
    for exercise in edition.exercises:
        if exercise.optional == (exercise.due_before_class is not None):
            raise RulesError(
                f"edition {edition.key!r}: TP {exercise.number} must be either optional or due before a class"
            )


def current_key(path: str | Path | None = None) -> str:
    """The name of the edition ``rules.yaml`` marks as ``current``."""
    return str(_read(path)["current"])


def editions(path: str | Path | None = None) -> dict[str, Edition]:
    """Every edition in ``rules.yaml``, in file order.

    Args:
        path: another rules file (default: the packaged ``rules.yaml``).

    Returns:
        ``{key: Edition}``.
    """
    raw = _read(path)["editions"]
    return {key: _edition(key, raw) for key in raw}


def load(edition: str | None = None, path: str | Path | None = None) -> Edition:
    """One edition of the rules: the ``current`` one unless ``edition`` names another.

    Args:
        edition: a key of ``rules.yaml``'s ``editions`` (default: its ``current``).
        path: another rules file (default: the packaged ``rules.yaml``).

    Returns:
        The :class:`Edition`, validated (weights add up to 1, each TP optional or dated).

    Raises:
        RulesError: unknown edition or malformed file.
    """
    data = _read(path)
    return _edition(edition or str(data["current"]), data["editions"])
