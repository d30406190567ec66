"""Measuring what a forward pass costs on the CPU: time, and the memory its tensors take.

Formulas like Ω(MSA) count multiply-adds; a measurement says what the machine does.
Two numbers per call:

* **time**: the median of several runs, as wall-clock time and as the CPU time of the
  calling thread. With ``torch.set_num_threads(1)`` the work happens in that thread, so
  its CPU time hardly moves when other programs share the machine, while wall-clock
  time does.
* **peak memory**: :class:`AllocationTracker` watches every PyTorch operation (a
  ``TorchDispatchMode``) and adds up the bytes of the tensors the operations create, from
  their creation until Python frees them; the peak of that sum is what the call needs
  on top of its inputs and weights. It is exact and deterministic for the tensors it
  sees. It does not see buffers an operation allocates and frees *inside* its own
  kernel: that is how fused attention (``F.scaled_dot_product_attention``) avoids ever
  holding the ``N × N`` score matrix, and the measurement shows it.

``torch.profiler`` with ``profile_memory=True`` records allocations too, but on the CPU
its events carry net bytes per operation and its C++ logging is noisy; ``torch.cuda``'s
``max_memory_allocated`` needs a GPU.
"""

from __future__ import annotations

import statistics
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["AllocationTracker", "Cost", "attention_block_costs", "forward_cost", "peak_memory", "time_call"]


def _storage_key(tensor: torch.Tensor) -> tuple[int, int]:
    storage = tensor.untyped_storage()
    return storage.data_ptr(), storage.nbytes()


class AllocationTracker(TorchDispatchMode):
    """Count the bytes of the tensors PyTorch operations create while the mode is active.

    Every output of an operation is traced to its storage; a storage not seen before
    and not among the operation's inputs (an in-place result or a view of an input) is
    a new allocation. Its bytes count until the last tensor using it is freed. Inputs,
    weights and anything created before the mode started are not counted.

    Attributes:
        live: bytes held right now by the tracked storages.
        peak: the largest value ``live`` reached.
        allocations: number of new storages seen.

    Example::

        with torch.no_grad(), AllocationTracker() as tracker:
            model(x)
        tracker.peak  # bytes
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.allocations = 0
        self._refs: dict[tuple[int, int], int] = {}  # storage -> tracked tensors using it

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {
            _storage_key(a)
            for a in tree_flatten((args, kwargs))[0]
            if isinstance(a, torch.Tensor)
        }
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor) or tensor.device.type == "meta":
                continue
            key = _storage_key(tensor)
            if key not in self._refs:
                if key in inputs or key[1] == 0:
                    continue  # in place, a view of an input, or empty: nothing new
                self._refs[key] = 0
                self.allocations += 1
                self.live += key[1]
                self.peak = max(self.peak, self.live)
            self._refs[key] += 1
            weakref.finalize(tensor, self._release, key)
        return out

    def _release(self, key: tuple[int, int]) -> None:
        self._refs[key] -= 1
        if self._refs[key] == 0:
            del self._refs[key]
            self.live -= key[1]


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes of the tensors ``fn()`` creates (see :class:`AllocationTracker`), under ``no_grad``.

    The result of ``fn`` is dropped inside the measurement, so it counts at its peak
    and is freed at the end.
    """
    with torch.no_grad(), AllocationTracker() as tracker:
        fn()
    return tracker.peak


def time_call(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> tuple[float, float]:
    """Median wall-clock and thread-CPU seconds of ``fn()`` over ``repeats`` runs, under ``no_grad``.

    Args:
        fn: what to time.
        repeats: timed runs (the median resists a run disturbed by other programs).
        warmup: untimed runs first (first calls allocate and pick kernels).

    Returns:
        ``(wall_seconds, cpu_seconds)``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    walls, cpus = [], []
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.thread_time()
            fn()
            cpus.append(time.thread_time() - cpu)
            walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus)


@dataclass(frozen=True)
class Cost:
    """What one call costs: median ``seconds`` (wall), ``cpu_seconds`` (thread) and ``peak_bytes``."""

    seconds: float
    cpu_seconds: float
    peak_bytes: int


def forward_cost(
    module: torch.nn.Module, *inputs: torch.Tensor, repeats: int = 5, warmup: int = 1, **kwargs: Any
) -> Cost:
    """Time and peak memory of ``module(*inputs, **kwargs)`` in eval mode, without gradients.

    Args:
        module: the module to measure (put in eval mode, then restored).
        *inputs: its inputs.
        repeats, warmup: see :func:`time_call`.
        **kwargs: keyword arguments of the call (``return_attention=True`` ...).

    Returns:
        A :class:`Cost`.
    """
    was_training = module.training
    module.eval()
    try:
        call = lambda: module(*inputs, **kwargs)  # noqa: E731
        seconds, cpu_seconds = time_call(call, repeats=repeats, warmup=warmup)
        peak = peak_memory(call)
    finally:
        module.train(was_training)
    return Cost(seconds=seconds, cpu_seconds=cpu_seconds, peak_bytes=peak)


def attention_block_costs(
    sides: list[int] | tuple[int, ...],
    embed_dim: int = 96,
    num_heads: int = 3,
    window_size: int = 7,
    repeats: int = 3,
    seed: int = 0,
):
    """Measure a ViT block (global attention) and a Swin block (shifted windows) on growing token grids.

    For each grid side ``s`` (``s × s`` tokens of ``embed_dim`` channels, one image):

    * ``"ViT (fusionada)"``: :class:`~vitcourse.layers.EncoderBlock` as models run it,
      with ``F.scaled_dot_product_attention``;
    * ``"ViT (manual)"``: the same block returning its weights, so the ``N × N`` matrices
      are materialised (``softmax(q kᵀ/√d) v`` written out);
    * ``"Swin (SW-MSA)"``: :class:`~vitcourse.models.SwinBlock` with shifted ``M × M`` windows.

    Args:
        sides: grid sides, multiples of ``window_size`` (Swin-T's first stage is 56 × 56).
        embed_dim, num_heads: the blocks' width (96 and 3 in Swin-T's first stage).
        window_size: ``M``.
        repeats: timed runs per measurement (see :func:`time_call`).
        seed: initialisation of the blocks and inputs.

    Returns:
        A ``pandas.DataFrame`` with one row per (side, block): ``side``, ``tokens``,
        ``block``, ``seconds``, ``cpu_seconds``, ``peak_bytes`` and the formula's
        multiply-adds ``omega`` (Ω(MSA) for ViT, Ω(W-MSA) for Swin).
    """
    import pandas as pd

    from .complexity import msa_flops, wmsa_flops
    from .layers import EncoderBlock
    from .models import SwinBlock

    rows = []
    for side in sides:
        if side % window_size:
            raise ValueError(f"every side must be a multiple of window_size={window_size}, got {side}")
        torch.manual_seed(seed)
        tokens = torch.randn(1, side * side, embed_dim)  # (B, N, C)
        grid = tokens.view(1, side, side, embed_dim)  # (B, H, W, C)
        vit = EncoderBlock(embed_dim, num_heads)
        swin = SwinBlock(embed_dim, num_heads, resolution=side, window_size=window_size, shifted=side > window_size)
        omega_msa, omega_wmsa = msa_flops(side, side, embed_dim), wmsa_flops(side, side, embed_dim, window_size)
        for block, module, inputs, kwargs, omega in (
            ("ViT (fusionada)", vit, tokens, {}, omega_msa),
            ("ViT (manual)", vit, tokens, {"return_attention": True}, omega_msa),
            ("Swin (SW-MSA)", swin, grid, {}, omega_wmsa),
        ):
            cost = forward_cost(module, inputs, repeats=repeats, **kwargs)
            rows.append(
                {
                    "side": side,
                    "tokens": side * side,
                    "block": block,
                    "seconds": cost.seconds,
                    "cpu_seconds": cost.cpu_seconds,
                    "peak_bytes": cost.peak_bytes,
                    "omega": omega,
                }
            )
    return pd.DataFrame(rows)
