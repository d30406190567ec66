"""Measurements that committed scripts wrote, with where and how they were made.

A chapter page has a minute in ``smoke``; running two OCR engines over 70 scanned
lines and a sweep of preprocessing settings takes longer. So a script does it
(``python -m vitcourse.scripts.ocr_classic``) and saves a JSON file in
``vitcourse/ocr/results/``; the chapter loads it with :func:`load` and re-runs one
small point live, and a test re-checks one point against the file.

Every file carries ``provenance``: the command, the git commit, the date, the
machine, the library versions, the seeds and the wall time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_DIR", "git_commit", "load", "provenance", "save"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def git_commit() -> str | None:
    """The commit checked out where this package lives, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def provenance(
    command: str, seconds: float, commit: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Where and how a result was measured.

    Args:
        command: the command that reproduces it.
        seconds: its wall time.
        commit: the commit the run started from (default: the one checked out now).
        **extra: more fields (seeds, versions of the engines, …).

    Returns:
        A JSON-ready dict.
    """
    import torch

    return {
        "command": command,
        "commit": commit or git_commit(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "wall_seconds": round(seconds, 1),
        **extra,
    }


def save(name: str, data: dict[str, Any], folder: str | Path | None = None) -> Path:
    """Write ``data`` as ``<folder>/<name>.json`` (default folder: :data:`RESULTS_DIR`)."""
    path = Path(folder or RESULTS_DIR) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return path


def load(name: str, folder: str | Path | None = None) -> dict[str, Any]:
    """Read ``<folder>/<name>.json``; the error says which script writes it."""
    path = Path(folder or RESULTS_DIR) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; write it with: python -m vitcourse.scripts.{name}"
        )
    return json.loads(path.read_text(encoding="utf-8"))
