"""Helpers for writing probes, and the plain-data form every observation travels in.

A probe calls an implementation and returns what it saw. Student and reference must be
observed under the same conditions: the same seed (:func:`seeded`) and, for modules
whose parameters start random, the same parameter values (:func:`set_parameters`).

:func:`to_wire` turns an observation into plain data: tensors (detached, on the CPU),
numbers, strings, ``None``, and lists/dicts of them. That is what crosses from the
process that ran the student's code to the one that judges it, saved with
``torch.save`` and read back with ``weights_only=True``, which cannot run code.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["parameter_shapes", "raised", "seeded", "set_parameters", "to_wire"]

# Lists longer than this, strings longer than this, are cut: an observation is a summary.
MAX_ITEMS = 10_000
MAX_CHARS = 2_000


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with Python, NumPy and PyTorch seeded, then restore their state.

    Restoring matters in a student's notebook: a check must not change the random
    numbers the following cells draw.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def set_parameters(module: nn.Module, seed: int = 0, std: float = 0.5) -> nn.Module:
    """Overwrite every parameter of ``module`` with seeded normal values, in order.

    Two implementations that register parameters of the same shapes in the same order
    end up with identical values, whatever their initialisation, so their outputs can
    be compared number by number.

    Args:
        module: the module to fill (modified in place).
        seed: seed of the values.
        std: standard deviation of the values.

    Returns:
        ``module``.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            values = torch.randn(parameter.shape, generator=generator, dtype=torch.float64) * std
            parameter.copy_(values.to(parameter.dtype))
    return module


def parameter_shapes(module: nn.Module) -> list[list[int]]:
    """Shapes of the trainable parameters, sorted, so the names students choose don't matter."""
    return sorted(list(p.shape) for p in module.parameters() if p.requires_grad)


def raised(action: Callable[[], Any]) -> str:
    """The name of the exception ``action()`` raises, or ``"sin error"``.

    For tests of the errors a student's code must raise (``ValueError`` for a size that
    doesn't divide). ``NotImplementedError`` is let through: code that isn't written yet
    is "not implemented", not "raises the wrong error".
    """
    try:
        action()
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 (which exception came is the observation)
        return type(error).__name__
    return "sin error"


def _is_dataframe(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and hasattr(value, "to_dict") and hasattr(value, "columns")


def to_wire(value: Any, _depth: int = 0) -> Any:
    """Plain-data copy of an observation (see the module docstring).

    Tensors become detached, contiguous CPU ``torch.Tensor`` (subclasses dropped),
    NumPy arrays and scalars become tensors and numbers, tuples become lists, a pandas
    ``DataFrame`` becomes ``{column: list}``, anything else becomes
    ``{"__type__": "its type name"}`` so the comparison can say what came.
    """
    if _depth > 20:
        return {"__type__": "estructura demasiado anidada"}
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)[:MAX_CHARS]
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        if tensor.layout != torch.strided:
            tensor = tensor.to_dense()
        return tensor.to("cpu").contiguous().clone().as_subclass(torch.Tensor)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return to_wire(value.tolist(), _depth + 1)
        return torch.from_numpy(np.ascontiguousarray(value).copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Size):
        return [int(size) for size in value]
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_wire(item, _depth + 1) for item in list(value)[:MAX_ITEMS]]
    if isinstance(value, dict):
        return {str(key): to_wire(item, _depth + 1) for key, item in list(value.items())[:MAX_ITEMS]}
    if _is_dataframe(value):
        return {str(column): to_wire(value[column].tolist(), _depth + 1) for column in value.columns}
    return {"__type__": type(value).__name__}
