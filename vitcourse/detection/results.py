"""The detection chapter's measured results: JSON files with where they come from.

Scripts that take longer than a chapter may (training, timing sweeps) write their
numbers with :func:`write_results` into this package's ``results/`` folder, so the
chapter reads them on Colab too; each file carries a ``provenance`` block (commit,
date, machine, versions, threads, seeds, wall time).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["RESULTS_DIR", "provenance", "read_results", "write_results"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        run = lambda *args: subprocess.run(  # noqa: E731
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        ).stdout.strip()
        head, dirty = run("rev-parse", "HEAD"), run("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(start: float | None = None, **extra: Any) -> dict[str, Any]:
    """Commit, date, machine, versions, threads and (from ``start = time.perf_counter()``) the wall time."""
    info = {
        "commit": _commit(),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{_cpu()}, {os.cpu_count()} logical CPUs",
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    if start is not None:
        info["wall_seconds"] = round(time.perf_counter() - start, 1)
    return {**info, **extra}


def write_results(name: str, results: dict[str, Any], start: float | None = None, folder: Path | None = None,
                  **extra: Any) -> Path:  # fmt: skip
    """Write ``results`` plus a ``provenance`` block as ``<folder>/<name>.json``."""
    folder = Path(folder or RESULTS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    payload = {**results, "provenance": provenance(start, **extra)}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_results(name: str, folder: Path | None = None) -> dict[str, Any]:
    """Read ``<name>.json``; the error says which script writes it."""
    path = Path(folder or RESULTS_DIR) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no results {path}; they are written by the detection chapter's scripts "
            f"(python -m vitcourse.scripts.train_detr, …)"
        )
    return json.loads(path.read_text(encoding="utf-8"))
