"""Compare what a student's code produced with what the reference produced.

Both observations are plain data (see :func:`vitcourse.grading.probes.to_wire`).
:func:`compare` walks them together and stops at the first difference, described in
Spanish as *what was expected* and *what came*::

    >>> compare({"salida": torch.zeros(2, 3)}, {"salida": torch.zeros(2, 4)})
    ('salida: forma (2, 4)', 'salida: forma (2, 3)')

Tensors are compared by kind (tensor or not), shape, dtype, then values within
``rtol``/``atol`` (``torch.isclose``); numbers within the same tolerance; strings,
booleans and lists exactly (lists element by element); dicts key by key.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["compare", "describe"]

Difference = tuple[str, str]


def describe(value: Any) -> str:
    """A short Spanish description of a value: ``"un tensor de forma (2, 3)"``, ``"una lista de 4 elementos"``."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "sí" if value else "no"
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    if isinstance(value, torch.Tensor):
        return f"un tensor de forma {_shape(value)} ({value.dtype})"
    if isinstance(value, list):
        return f"una lista de {_count(len(value))}"
    if isinstance(value, dict):
        if set(value) == {"__type__"}:
            return f"un objeto de tipo {value['__type__']}"
        return f"un diccionario con claves {_keys(value)}"
    return f"un objeto de tipo {type(value).__name__}"


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "un booleano"
    if isinstance(value, (int, float)):
        return "un número"
    if isinstance(value, str):
        return "un texto"
    if isinstance(value, torch.Tensor):
        return "un tensor"
    if isinstance(value, list):
        return "una lista"
    if isinstance(value, dict):
        return f"un objeto de tipo {value['__type__']}" if set(value) == {"__type__"} else "un diccionario"
    return f"un objeto de tipo {type(value).__name__}"


def _shape(tensor: torch.Tensor) -> str:
    return "(" + ", ".join(str(size) for size in tensor.shape) + ("," if tensor.ndim == 1 else "") + ")"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.6g}"


def _count(n: int) -> str:
    return "1 elemento" if n == 1 else f"{n} elementos"


def _keys(mapping: dict) -> str:
    return "{" + ", ".join(repr(key) for key in mapping) + "}"


def _literal(value: Any) -> str | None:
    """``repr`` of a small structure of plain values (no tensors), or ``None``."""

    def plain(v: Any) -> bool:
        if isinstance(v, list):
            return all(plain(item) for item in v)
        return v is None or isinstance(v, (bool, int, float, str))

    text = repr(value)
    return text if plain(value) and len(text) <= 80 else None


def _at(label: str, text: str) -> str:
    return f"{label}: {text}" if label else text


def _compare_tensors(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float, label: str):
    if got.shape != expected.shape:
        return _at(label, f"forma {_shape(expected)}"), _at(label, f"forma {_shape(got)}")
    if got.dtype != expected.dtype:
        return _at(label, f"dtype {expected.dtype}"), _at(label, f"dtype {got.dtype}")
    if got.numel() == 0:
        return None
    if expected.is_floating_point() or expected.is_complex():
        close = torch.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
        error = (got - expected).abs().to(torch.float64)
    else:
        close = got == expected
        error = (got.to(torch.float64) - expected.to(torch.float64)).abs()
    if bool(close.all()):
        return None
    wrong = int((~close).sum())
    error = torch.where(close, torch.zeros_like(error), error.nan_to_num(nan=math.inf))
    index = tuple(int(i) for i in torch.unravel_index(error.argmax(), error.shape)) if error.ndim else ()
    where = "[" + ", ".join(map(str, index)) + "]"
    tolerance = f" (tolerancia rtol={rtol:g}, atol={atol:g})" if expected.is_floating_point() else ""
    expected_text = f"valores como la referencia{tolerance}"
    got_text = (
        f"{wrong} de {got.numel()} valores distintos; en {where} se esperaba "
        f"{_number(expected[index].item())} y llegó {_number(got[index].item())}"
    )
    return _at(label, expected_text), _at(label, got_text)


def compare(got: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6, label: str = "") -> Difference | None:
    """The first difference between two observations, or ``None`` when they agree.

    Args:
        got: the student's observation (plain data).
        expected: the reference's observation (plain data).
        rtol, atol: tolerances for floating-point tensors and numbers.
        label: where in the observation we are (dict keys and list indices), for the text.

    Returns:
        ``(expected_text, got_text)`` in Spanish, or ``None``.
    """
    if isinstance(expected, bool) or isinstance(got, bool):
        if isinstance(expected, bool) and isinstance(got, bool) and got == expected:
            return None
        return _at(label, describe(expected)), _at(label, describe(got))
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        if isinstance(expected, float) or isinstance(got, float):
            if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol) or (math.isnan(got) and math.isnan(expected)):
                return None
        elif got == expected:
            return None
        return _at(label, _number(expected)), _at(label, _number(got))
    if _kind(got) != _kind(expected):
        return _at(label, describe(expected)), _at(label, describe(got))
    if expected is None:
        return None
    if isinstance(expected, str):
        return None if got == expected else (_at(label, describe(expected)), _at(label, describe(got)))
    if isinstance(expected, torch.Tensor):
        return _compare_tensors(got, expected, rtol, atol, label)
    if isinstance(expected, list):
        if len(got) != len(expected):
            if _literal(got) is not None and _literal(expected) is not None:
                return _at(label, _literal(expected)), _at(label, _literal(got))
            return _at(label, _count(len(expected))), _at(label, _count(len(got)))
        for i, (item_got, item_expected) in enumerate(zip(got, expected)):
            difference = compare(item_got, item_expected, rtol, atol, f"{label}[{i}]")
            if difference:
                return difference
        return None
    if isinstance(expected, dict):
        if set(got) != set(expected):
            return _at(label, f"claves {_keys(expected)}"), _at(label, f"claves {_keys(got)}")
        for key, item_expected in expected.items():
            difference = compare(got[key], item_expected, rtol, atol, f"{label}.{key}" if label else str(key))
            if difference:
                return difference
        return None
    return None if got == expected else (_at(label, describe(expected)), _at(label, describe(got)))
