"""Results of the committed experiment scripts, shipped with the package for the book to load.

A script too long for a chapter's minute (chapter 2's study on Fashion-MNIST, say) writes
its numbers here, one JSON file per part and seed, each with its provenance: the commit of
the code that produced it, the seeds, the wall and CPU time, the machine and the command::

    from vitcourse import results
    runs = results.load_runs("ch2_fashion")        # a DataFrame, one row per training run
    results.provenance_of("ch2_fashion")           # where and when each file was made
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["folder", "load_files", "load_runs", "machine", "provenance", "provenance_of", "write"]


ENV_VAR = "VITCOURSE_RESULTS"


def folder(study: str) -> Path:
    """The folder holding ``study``'s files: inside the installed package, or under
    ``$VITCOURSE_RESULTS`` when set (tests, trial runs)."""
    root = os.environ.get(ENV_VAR)
    return (Path(root) if root else Path(__file__).parent) / study


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU model, cores, torch and its threads, Python, OS."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(seeds: list[int], **extra: Any) -> dict[str, Any]:
    """The provenance block of a results file (call it when the run starts; add times at the end).

    Records the commit and whether the package's files differed from it (``dirty``), the
    seeds, the command line, the machine and the date.
    """
    import datetime

    package = Path(__file__).parents[1]
    # results aside (the ":(exclude)" form: ":!" does not exclude an absolute path)
    status = _git("status", "--porcelain", "--", str(package), f":(exclude){Path(__file__).parent}/")
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
        "seeds": list(seeds),
        "command": "python -m " + " ".join([Path(sys.argv[0]).stem if sys.argv else "?", *sys.argv[1:]]),
        "machine": machine(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        **extra,
    }


def write(study: str, part: str, data: dict[str, Any], root: str | Path | None = None) -> Path:
    """Write one results file ``<study>/<part>.json`` (atomically) and return its path."""
    target = (Path(root) if root else folder(study).parent) / study / f"{part}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".json.tmp")
    partial.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(target)
    return target


def load_files(study: str, root: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Every results file of a study: ``{part: {"provenance": ..., "runs": [...]}}``.

    Raises:
        FileNotFoundError: the study has no results; the message names the script to run.
    """
    base = (Path(root) if root else folder(study).parent) / study
    files = sorted(base.glob("*.json")) if base.exists() else []
    if not files:
        raise FileNotFoundError(
            f"no results for {study!r} in {base}; produce them with its script (see vitcourse/scripts/)"
        )
    return {file.stem: json.loads(file.read_text(encoding="utf-8")) for file in files}


def load_runs(study: str, root: str | Path | None = None):
    """All runs of a study as a ``pandas.DataFrame`` (a ``part`` column says which file)."""
    import pandas as pd

    rows = [{"part": part, **run} for part, data in load_files(study, root).items() for run in data["runs"]]
    return pd.DataFrame(rows)


def provenance_of(study: str, root: str | Path | None = None):
    """One row per results file: commit, seeds, wall and CPU time, machine, date."""
    import pandas as pd

    rows = []
    for part, data in load_files(study, root).items():
        p = data["provenance"]
        rows.append({
            "part": part, "commit": (p.get("commit") or "?")[:10], "dirty": p.get("dirty"), "seeds": p["seeds"],
            "wall_seconds": p.get("wall_seconds"), "cpu_seconds": p.get("cpu_seconds"),
            "cpu": p["machine"]["cpu"], "threads": p["machine"]["torch_threads"], "date": p.get("started"),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("part")
