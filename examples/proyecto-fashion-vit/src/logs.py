"""Logging to files with levels, and warnings handled on purpose.

The course's rule for projects: nothing printed on the screen, everything in a file.
Every module logs through ``logging.getLogger(__name__)``; :func:`setup_logging` sends
the records of this project (``src``) and of ``vitcourse`` to ``logs/<command>.log``,
at the level the config names (DEBUG, INFO, WARNING, ERROR).

Warnings are not left to chance either (:func:`setup_warnings`): the few that are known
to be noise are ignored by message and module, with the reason next to each filter;
every other warning is routed into the same log file, where it is kept instead of
scrolling past. The tests turn this project's own warnings into errors (pyproject.toml).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
# A step run as `python -m src.models.train_model` logs as "__main__", not "src....".
LOGGERS = ("src", "__main__", "vitcourse", "py.warnings")

# (message regex, module regex, why it is safe to ignore)
IGNORED_WARNINGS = (
    (
        r".*enable_nested_tensor is True.*",
        r"torch\.nn\.modules\.transformer",
        "PyTorch's own encoder (not our model) says its fast path is off: no effect",
    ),
    (
        r".*pkg_resources is deprecated.*",
        r".*",
        "a dependency of MLflow imports a deprecated module: not ours to change",
    ),
)


def setup_logging(folder: str | Path, command: str, level: str = "INFO") -> Path:
    """Send this project's and vitcourse's log records to ``folder/<command>.log``.

    Args:
        folder: where log files go (created if missing).
        command: the step (``"data"``, ``"train"``, ...), which names the file.
        level: ``"DEBUG"``, ``"INFO"``, ``"WARNING"`` or ``"ERROR"``.

    Returns:
        The log file's path.
    """
    numeric = logging.getLevelName(str(level).upper())
    if not isinstance(numeric, int):
        from .errors import ProjectError

        raise ProjectError(
            'logging.level must be "DEBUG", "INFO", "WARNING" or "ERROR"; '
            f"got {level!r}"
        )
    path = Path(folder) / f"{command}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(numeric)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [
            h for h in logger.handlers if not isinstance(h, logging.FileHandler)
        ]
        logger.addHandler(handler)
        logger.setLevel(numeric)
        logger.propagate = False  # nothing reaches the screen through the root logger
    return path


def setup_warnings() -> None:
    """Ignore the known noise (:data:`IGNORED_WARNINGS`), log every other warning."""
    for message, module, _why in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=module)
    logging.captureWarnings(
        True
    )  # warnings.warn(...) → the "py.warnings" logger → the log file
