"""Child processes of the grader: killing them with everything they started, and orphans.

The notebook runner (:mod:`.execute`) and the sandbox (:mod:`.sandbox`) start in sessions
of their own (``start_new_session=True``), and so does every Jupyter kernel, so a
process group is a clean unit to kill: the child and whatever it started, nothing else.
If the grader itself dies (Ctrl-C, a crash), :func:`watch_grader` makes its children
exit instead of running on unattended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["kill_sessions", "read_pid", "watch_grader"]


def read_pid(path: Path | str | None) -> int | None:
    """The process id written in ``path``, or ``None``."""
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError, TypeError):
        return None


def kill_sessions(process: subprocess.Popen | None, *pids: int | None) -> None:
    """SIGKILL the session of ``process`` and of each pid (a kernel), then reap ``process``."""
    groups = ([process.pid] if process is not None else []) + [pid for pid in pids if pid]
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if process is not None:
        process.wait()


def watch_grader(pid: int | None, on_exit: Callable[[], None] | None = None) -> None:
    """Exit this process as soon as the grader ``pid`` is gone, after calling ``on_exit``."""
    if not pid:
        return

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                if on_exit is not None:
                    on_exit()
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, daemon=True).start()
