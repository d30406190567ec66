"""The timing harness the benchmarks share: steps, interleaved repetitions, medians, the machine.

Timing two models one after the other on a shared machine compares two moments of its
load as much as two models. So every repetition runs *all* the steps back to back, in
an order that alternates (A, B, C, then C, B, A, …); the medians resist outliers, and
the *paired* ratio (the median over repetitions of ``time_A / time_B`` within the same
repetition) cancels drifts in the load that hit both.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["load_average", "logits_of", "machine_info", "make_step", "paired_ratio", "time_interleaved"]


def logits_of(output) -> torch.Tensor:
    """The logits of a model's output: a tensor (ours, timm) or an object with ``.logits`` (Hugging Face)."""
    return output if isinstance(output, torch.Tensor) else output.logits


def make_step(model: torch.nn.Module, task: str, images: torch.Tensor, labels: torch.Tensor) -> Callable[[], None]:
    """A closure running one forward pass (``"forward"``: eval, inference mode) or one
    training step (``"train"``: forward, cross-entropy, backward, AdamW step) of ``model``."""
    if task == "forward":
        model.eval()

        def step() -> None:
            with torch.inference_mode():
                model(images)

        return step
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(logits_of(model(images)), labels).backward()
        optimizer.step()

    return step


def time_interleaved(
    steps: dict[str, Callable[[], None]], reps: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Seconds per call of each step, all steps in every repetition, the order reversed
    every other one.

    Args:
        steps: name → a closure with no arguments.
        reps: timed repetitions.
        warmup: untimed repetitions first (allocator, caches, lazy initialisation).

    Returns:
        name → ``reps`` durations in seconds.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for rep in range(reps):
        for name in order if rep % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over repetitions of ``time[a] / time[b]`` (both measured within the same repetition)."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def load_average() -> float:
    """The 1-minute load average (runnable processes; above the core count, processes wait for a core)."""
    return os.getloadavg()[0]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(**versions: str) -> dict:
    """Where and when the numbers were measured: platform, CPU, cores, versions, date, load."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        **versions,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_1_5_15min": list(os.getloadavg()),
    }
