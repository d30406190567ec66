"""Where a result came from: the code's commit, the versions, the machine, the date.

Every JSON of results carries this, so a number in the report can be traced back to
the code and the hardware that produced it.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from typing import Any


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def provenance() -> dict[str, Any]:
    """The commit (and whether files had changed), versions, machine and date."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        vitcourse_version = version("vitcourse")
    except PackageNotFoundError:  # a checkout on the path, not installed
        vitcourse_version = None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    status = _git("status", "--porcelain")
    return {
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(status) if status is not None else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "vitcourse": vitcourse_version,
        "machine": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
