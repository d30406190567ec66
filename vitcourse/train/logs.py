"""Logging to a file with levels, the way the course asks projects to log.

``print`` goes to a screen nobody keeps; a log file with levels (DEBUG, INFO,
WARNING, ERROR) stays with the run. Every module of the package logs through
``logging.getLogger(__name__)``, so one handler on the ``"vitcourse"`` logger
catches them all.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOG_FORMAT", "log_to_file"]

LOG_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"


@contextlib.contextmanager
def log_to_file(
    path: str | Path | None, level: str | int = "INFO", logger_name: str = "vitcourse"
) -> Iterator[logging.Logger]:
    """Send ``logger_name``'s records at ``level`` and above to ``path`` while the block runs.

    The logger's own level is lowered to ``level`` for the block (so INFO records are not
    dropped before they reach the file) and restored afterwards, with the handler removed.

    Args:
        path: log file (appended to; parent folders are created); ``None`` does nothing.
        level: ``"DEBUG"``, ``"INFO"``, ``"WARNING"``, ``"ERROR"`` or a ``logging`` constant.
        logger_name: which logger to capture (``"vitcourse"`` covers the whole package).

    Yields:
        The logger.
    """
    logger = logging.getLogger(logger_name)
    if path is None:
        yield logger
        return
    level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(level, int):
        raise ValueError(f'level must be "DEBUG", "INFO", "WARNING" or "ERROR", got {level!r}')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    previous_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        handler.close()
