"""Where a script's numbers come from: commit, machine, threads, seeds, wall time.

Every training or evaluation script of chapter 4 writes its results as JSON with a
``provenance`` block from :func:`provenance`, into :func:`results_path` (a folder of the
package, so the chapter reads them on Colab too)::

    start = time.perf_counter()
    ...
    write_results("mae_fashion", {"metrics": ...}, start, seeds=[0, 1, 2])
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

__all__ = ["provenance", "read_results", "results_path", "write_results"]

RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


def _commit() -> str:
    """The repository's commit (with ``+dirty`` if files differ from it); in a copy without
    git (a GPU machine gets the tree, not ``.git``), ``VITCOURSE_COMMIT`` if the caller
    set it, else ``"unknown"``."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("VITCOURSE_COMMIT", "unknown")
    return head + ("+dirty" if dirty else "")


def provenance(start: float | None = None, **extra: Any) -> dict[str, Any]:
    """Commit, date, machine, versions, threads and (from ``start``) the wall time.

    Args:
        start: ``time.perf_counter()`` at the start of the run.
        **extra: more fields (``seeds=[0, 1, 2]``, ``command="python -m ..."``).

    Returns:
        A JSON-ready dict.
    """
    info = {
        "commit": _commit(),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if start is not None:
        info["wall_seconds"] = round(time.perf_counter() - start, 1)
    return {**info, **extra}


def results_path(name: str, root: str | Path | None = None) -> Path:
    """``vitcourse/results/<name>.json`` (or under ``root``)."""
    return Path(root or RESULTS_DIR) / f"{name}.json"


def write_results(
    name: str, results: dict[str, Any], start: float | None = None, root: str | Path | None = None, **extra: Any
) -> Path:
    """Write ``results`` plus a ``provenance`` block to :func:`results_path`.

    Returns:
        The path written.
    """
    path = results_path(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**results, "provenance": provenance(start, **extra)}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_results(name: str, root: str | Path | None = None) -> dict[str, Any]:
    """The JSON a script wrote with :func:`write_results`.

    Raises:
        FileNotFoundError: with the command that writes it, when it is missing.
    """
    path = results_path(name, root)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run the script that writes it (see vitcourse/scripts/, e.g. "
            f"python -m vitcourse.scripts.train_mae)"
        )
    return json.loads(path.read_text(encoding="utf-8"))
