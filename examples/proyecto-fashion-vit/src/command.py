"""The boundary between the command line and the code: arguments, logs, errors.

Each step's ``main`` calls :func:`run`, which reads the config, sets up the log file and
the warnings, runs the step, and turns a failure into one line on the screen and the
whole story in the log. Inside the steps, errors are raised, never printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .config import DEFAULT_CONFIG, load_config
from .errors import ProjectError
from .logs import setup_logging, setup_warnings

logger = logging.getLogger(__name__)


def parse_args(command: str, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m src ... ({command})", description=f"The {command} step."
    )
    parser.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        help="the YAML config (configs/config.yaml)",
    )
    parser.add_argument(
        "--profile", default=None, help="smoke, full or auto (default: the config's)"
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="change config values for this run, e.g. --set seed=1 train.epochs=3",
    )
    # A mistake on the command line is one line too, like every other error here.
    parser.error = lambda message: parser.exit(2, f"{command}: error: {message}\n")
    return parser.parse_args(argv)


def run(
    command: str,
    step: Callable[[dict[str, Any]], Any],
    argv: Sequence[str] | None = None,
) -> int:
    """Run one step of the pipeline as a command.

    Args:
        command: its name (``"train"``), which also names the log file.
        step: ``step(config)``, raising :class:`ProjectError` for what the user can fix.
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 done, 2 a :class:`ProjectError`,
        1 an unexpected error (the traceback is in the log), 130 interrupted.
    """
    args = parse_args(command, argv)
    try:
        config = load_config(args.config, args.profile, args.set)
        log_file = setup_logging(
            config["paths"]["logs"], command, config["logging"]["level"]
        )
    except ProjectError as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return 2
    setup_warnings()
    logger.info("%s: profile %s, config %s", command, config["profile"], args.config)
    try:
        step(config)
    except ProjectError as error:
        logger.error("%s failed: %s", command, error)
        print(f"{command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        logger.warning("%s interrupted", command)
        return 130
    except (
        Exception
    ) as error:  # anything else is a bug: keep the traceback, say where it is
        logger.exception("%s failed unexpectedly", command)
        print(
            f"{command}: unexpected {type(error).__name__}: {error} "
            f"(traceback in {log_file})",
            file=sys.stderr,
        )
        return 1
    logger.info("%s done", command)
    return 0
