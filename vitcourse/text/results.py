"""Measurements written by the GPT chapter's committed scripts, with their provenance.

Training a language model, a fine-tuning sweep over seeds and the in-context-learning
model take minutes; a chapter page has seconds. So each script
(``python -m vitcourse.scripts.train_gpt``, ``finetune_gpt``, ``train_icl``) saves a JSON
file in ``vitcourse/text/results/``; the chapter loads it (:func:`load`), re-runs one
small point live, and a test re-checks a point against the file.

Every file carries ``provenance``: the command, the git commit, the date, the machine,
the library versions, the seeds, the threads and the wall time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_DIR", "load", "provenance", "save"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10, check=False)
    except OSError:
        return None
    return out.stdout.strip() or None


def provenance(command: str, seeds: list[int], seconds: float, **extra: Any) -> dict[str, Any]:
    """Where, when and how a measurement was made.

    Args:
        command: the command that reproduces it.
        seeds: the seeds used.
        seconds: wall time.
        **extra: anything else worth keeping (threads, notes).

    Returns:
        A JSON-ready dict.
    """
    import torch

    return {
        "command": command,
        "commit": _git_commit(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "seeds": seeds,
        "seconds": round(seconds, 1),
        **extra,
    }


def save(name: str, results: dict[str, Any], folder: str | Path | None = None) -> Path:
    """Write ``results`` as ``<folder>/<name>.json`` (default :data:`RESULTS_DIR`)."""
    path = Path(folder or RESULTS_DIR) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load(name: str, folder: str | Path | None = None) -> dict[str, Any]:
    """Read ``<name>.json``; the error says which script writes it."""
    path = Path(folder or RESULTS_DIR) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; it is written by python -m vitcourse.scripts.{name}")
    return json.loads(path.read_text(encoding="utf-8"))
