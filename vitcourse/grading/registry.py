"""What each TP grades: assignments, their parts, and the tests of each part.

A TP's checks live in one module (``vitcourse/grading/tp1.py`` for TP1) that builds
an :class:`Assignment`, declares its parts with their points, and writes one small
*probe* per test::

    TP = Assignment("tp1", title="TP1: ...")
    pos = TP.part("learned_pos", title="LearnedPositionalEmbedding", points=4,
                  target="LearnedPositionalEmbedding", reference=LearnedPositionalEmbedding)

    @pos.test("Suma la tabla a los tokens", hint="...")
    def forward_values(cls):
        module = cls(10, 8)
        set_parameters(module, seed=1)
        return {"salida": module(torch.randn(2, 7, 8))}

A probe receives an implementation (the student's, or the reference) and returns what
it observed: tensors, numbers, strings, lists and dicts of them. The same probe runs on
both, with the same seed, and :mod:`vitcourse.grading.compare` compares the two
observations; the dict keys name what is compared in the verdict, so they are Spanish.

A part's points are split among its tests by ``weight``. Tests registered while
:func:`load_private_tests` imports an instructor's folder are *private*: they share the
part's points with the public ones, so the points a student sees in the book never
change, but the grade needs the private tests too.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Assignment",
    "Definition",
    "Part",
    "Test",
    "Variable",
    "get_assignment",
    "get_part",
    "load_checks",
    "load_private_tests",
]

_ASSIGNMENTS: dict[str, Assignment] = {}
_PRIVATE_FOLDERS: dict[Path, list[str]] = {}  # folder -> ids of the tests it added
_loading_private = False


@dataclass(frozen=True)
class Definition:
    """The part grades a function or class the student defines under ``name``.

    At grading time the student's definitions are extracted from the notebook and run
    in a separate process, where the probes call them.
    """

    name: str


@dataclass(frozen=True)
class Variable:
    """The part grades a value the notebook produces, left in the variable ``name``.

    At grading time the value is read from the kernel after the notebook ran and the
    probes run on that value (plain data, see :func:`vitcourse.grading.probes.to_wire`).
    """

    name: str


Probe = Callable[[Any], Any]
Judge = Callable[[Any, Any], "tuple[str, str] | None"]


@dataclass
class Test:
    """One verification of a part.

    Attributes:
        part_key: ``"tp1.learned_pos"``.
        name: identifier unique within the part (the probe's function name).
        title: one line in Spanish, what is verified.
        probe: ``probe(implementation) -> observation``.
        weight: share of the part's points.
        hint: what to look at when it fails (Spanish).
        rtol, atol: tolerances for floating-point values.
        judge: optional ``judge(student_obs, reference_obs) -> (expected, got) | None``
            for comparisons the default one can't express; ``None`` means it passed.
        private: registered from the instructor's private folder.
    """

    part_key: str
    name: str
    title: str
    probe: Probe
    weight: float = 1.0
    hint: str = ""
    rtol: float = 1e-5
    atol: float = 1e-6
    judge: Judge | None = None
    private: bool = False

    @property
    def id(self) -> str:
        """``"tp1.learned_pos/forward_values"``."""
        return f"{self.part_key}/{self.name}"

    @property
    def seed(self) -> int:
        """A fixed seed per test, the same on every machine and every run."""
        return zlib.crc32(self.id.encode("utf-8")) % (2**31)


@dataclass
class Part:
    """A graded part of a TP: what is checked, against what, for how many points.

    Attributes:
        key: ``"tp1.learned_pos"`` (assignment key, dot, part name).
        title: short Spanish title.
        points: points of the part (shared among its tests by weight).
        target: what the student hands in: a :class:`Definition` or :class:`Variable`;
            ``None`` for a part graded by hand.
        reference: the reference implementation for a :class:`Definition` target, or a
            function of no arguments returning the expected value for a :class:`Variable`.
        description: one or two sentences for the book page (Spanish).
        manual: graded by the instructor (written answers); no tests.
        forbidden: other ready-made implementations whose use inside the student's
            definition doesn't count either: the package's model when ``reference`` is an
            adapter of it, or a PyTorch layer that does the whole job
            (``nn.MultiheadAttention`` for an attention part).
    """

    key: str
    title: str
    points: float
    target: Definition | Variable | None = None
    reference: Any = None
    description: str = ""
    manual: bool = False
    forbidden: tuple[Any, ...] = ()
    tests: list[Test] = field(default_factory=list)

    def test(
        self,
        title: str,
        *,
        weight: float = 1.0,
        hint: str = "",
        rtol: float = 1e-5,
        atol: float = 1e-6,
        judge: Judge | None = None,
        name: str | None = None,
    ) -> Callable[[Probe], Probe]:
        """Decorator registering a probe as a test of this part (see the module docstring)."""
        if self.manual:
            raise ValueError(f"part {self.key} is graded by hand; it has no tests")

        def register(probe: Probe) -> Probe:
            test_name = name or probe.__name__
            if any(t.name == test_name for t in self.tests):
                raise ValueError(f"part {self.key} already has a test named {test_name!r}")
            self.tests.append(
                Test(self.key, test_name, title, probe, weight, hint, rtol, atol, judge, private=_loading_private)
            )
            return probe

        return register

    @property
    def public_tests(self) -> list[Test]:
        """The tests a student can run with ``check``."""
        return [t for t in self.tests if not t.private]

    @property
    def originals(self) -> tuple[Any, ...]:
        """What the student must not lean on: the reference and the ``forbidden`` ones."""
        return (self.reference, *self.forbidden)

    @property
    def target_name(self) -> str | None:
        """The name the student's notebook defines (``None`` for manual parts)."""
        return self.target.name if self.target is not None else None


class Assignment:
    """A TP: a key (``"tp1"``), a title and its parts, in order.

    Creating one registers it, so :func:`get_part` finds ``"tp1.learned_pos"``.
    """

    def __init__(self, key: str, title: str) -> None:
        if not key.isidentifier():
            raise ValueError(f"an assignment key must be a Python identifier, got {key!r}")
        self.key = key
        self.title = title
        self.parts: list[Part] = []
        _ASSIGNMENTS[key] = self

    def part(
        self,
        name: str,
        *,
        title: str,
        points: float,
        target: str | Definition | Variable | None = None,
        reference: Any = None,
        description: str = "",
        manual: bool = False,
        forbidden: tuple[Any, ...] = (),
    ) -> Part:
        """Declare a part; a plain string ``target`` means a :class:`Definition`."""
        if isinstance(target, str):
            target = Definition(target)
        if not manual and (target is None or reference is None):
            raise ValueError(f"part {self.key}.{name} needs a target and a reference (or manual=True)")
        if any(p.key == f"{self.key}.{name}" for p in self.parts):
            raise ValueError(f"assignment {self.key} already has a part {name!r}")
        part = Part(f"{self.key}.{name}", title, points, target, reference, description, manual, tuple(forbidden))
        self.parts.append(part)
        return part

    @property
    def auto_parts(self) -> list[Part]:
        """Parts graded by tests."""
        return [p for p in self.parts if not p.manual]

    @property
    def total_points(self) -> float:
        """Points of every part, manual ones included."""
        return sum(p.points for p in self.parts)

    def __repr__(self) -> str:
        return f"Assignment({self.key!r}, parts={[p.key for p in self.parts]})"


def get_assignment(key: str) -> Assignment:
    """The assignment ``key``, importing ``vitcourse.grading.<key>`` the first time."""
    if key not in _ASSIGNMENTS:
        try:
            importlib.import_module(f"vitcourse.grading.{key}")
        except ModuleNotFoundError as error:
            if error.name != f"vitcourse.grading.{key}":
                raise
    if key not in _ASSIGNMENTS:
        known = ", ".join(sorted(_ASSIGNMENTS)) or "ninguno cargado"
        raise KeyError(f"no hay checks para el TP {key!r} (conocidos: {known}); revisá el nombre, p. ej. 'tp1'")
    return _ASSIGNMENTS[key]


def get_part(key: str) -> Part:
    """The part ``"tp1.learned_pos"``; the error lists the parts that exist."""
    assignment_key, _, _ = key.partition(".")
    assignment = get_assignment(assignment_key)
    for part in assignment.parts:
        if part.key == key:
            return part
    names = ", ".join(repr(p.key) for p in assignment.parts)
    raise KeyError(f"el TP {assignment_key!r} no tiene la parte {key!r}; las partes son: {names}")


def load_checks(module: str, search_path: list[Path] = ()) -> Assignment:
    """Import the module that defines a TP's checks and return its assignment.

    Args:
        module: dotted module name, e.g. ``"vitcourse.grading.tp1"``.
        search_path: folders put in front of ``sys.path`` first (a TP outside the
            package, such as the test suite's demo TP).

    Returns:
        The :class:`Assignment` the module created.
    """
    for folder in reversed([str(Path(p).resolve()) for p in search_path]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    before = set(_ASSIGNMENTS.values())
    imported = importlib.import_module(module)
    created = [a for a in _ASSIGNMENTS.values() if a not in before]
    candidates = created or [a for a in vars(imported).values() if isinstance(a, Assignment)]
    if len(candidates) != 1:
        raise ValueError(f"{module} must define exactly one Assignment, found {len(candidates)}")
    return candidates[0]


@contextmanager
def _private():
    global _loading_private
    _loading_private = True
    try:
        yield
    finally:
        _loading_private = False


def load_private_tests(folder: Path) -> list[str]:
    """Import every ``*.py`` in an instructor's folder; the tests they add are private.

    A private module adds tests to existing parts::

        from vitcourse.grading import get_part
        pos = get_part("tp1.learned_pos")

        @pos.test("Funciona con lotes de un solo elemento")
        def batch_of_one(cls): ...

    Returns:
        The ids of the tests the folder added.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"private tests folder {folder} does not exist; pass a folder of .py files")
    if folder in _PRIVATE_FOLDERS:  # imported already (a second batch in the same process)
        return list(_PRIVATE_FOLDERS[folder])
    before = {t.id for a in _ASSIGNMENTS.values() for p in a.parts for t in p.tests}
    with _private():
        for path in sorted(folder.glob("*.py")):
            name = f"vitcourse_private_tests_{zlib.crc32(str(path).encode()):08x}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    after = {t.id for a in _ASSIGNMENTS.values() for p in a.parts for t in p.tests}
    _PRIVATE_FOLDERS[folder] = sorted(after - before)
    return list(_PRIVATE_FOLDERS[folder])
