"""Experiment tracking with MLflow, stored locally (no server).

A tracked run keeps its parameters, a metric curve per epoch and its artefacts (the
log file, the history, the best weights) where ``mlflow ui`` can show them later::

    fit(model, train_loader, val_loader, epochs=10, mlflow=True)   # → ./mlruns
    # then, in a terminal (needs the full `mlflow` package for the UI):
    #   mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db

The store is a SQLite file (``<folder>/mlflow.db``, MLflow's recommended local
backend) with the artefacts next to it (``<folder>/artifacts``). The light
``mlflow-skinny`` package is enough to log; a full URI (``http://…``,
``databricks``) logs to a server instead.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["MlflowTracker", "resolve_tracking"]

logger = logging.getLogger(__name__)


def resolve_tracking(where: bool | str | Path) -> tuple[str, str | None]:
    """Turn ``fit``'s ``mlflow=`` argument into ``(tracking_uri, artifact_location)``.

    Args:
        where: ``True`` (``./mlruns``), a folder, or a URI containing ``:`` such as
            ``sqlite:///path/mlflow.db`` or ``http://host:5000``.

    Returns:
        The tracking URI and, for a folder, where new experiments keep their artefacts.
    """
    if where is True:
        where = "mlruns"
    where = str(where)
    if "://" in where or where.startswith(("sqlite:", "file:", "databricks")):
        return where, None
    folder = Path(where).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Silence INFO chatter and deprecation warnings of other libraries (the store's
    database set-up) for a moment: nothing a student can act on."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


class MlflowTracker:
    """One MLflow run, driven explicitly through an ``MlflowClient`` (no global active run).

    Args:
        where: see :func:`resolve_tracking`.
        experiment: experiment name (created if missing).
        run_name: name shown in the UI.
        params: hyper-parameters to record (values are stringified by MLflow).
    """

    def __init__(
        self,
        where: bool | str | Path = True,
        experiment: str = "vitcourse",
        run_name: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        try:
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient
        except ImportError as error:
            raise ImportError(
                "MLflow tracking needs the mlflow package: pip install mlflow-skinny (or pass mlflow=False)"
            ) from error
        self._metric, self._param = Metric, Param
        self.tracking_uri, artifact_location = resolve_tracking(where)
        with _quiet("mlflow", "alembic"):
            self.client = MlflowClient(tracking_uri=self.tracking_uri)
            found = self.client.get_experiment_by_name(experiment)
            experiment_id = (
                found.experiment_id
                if found is not None
                else self.client.create_experiment(experiment, artifact_location=artifact_location)
            )
            self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        logger.info("MLflow run %s in experiment %r at %s", self.run_id, experiment, self.tracking_uri)
        if params:
            self.log_params(params)

    def log_params(self, params: dict[str, Any]) -> None:
        """Record hyper-parameters (once per key)."""
        items = [self._param(str(k), str(v)[:6000]) for k, v in params.items()]
        self.client.log_batch(self.run_id, params=items)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Record numeric metrics at ``step`` (the epoch); non-numbers and NaNs are skipped."""
        timestamp = int(time.time() * 1000)
        items = [
            self._metric(str(k), float(v), timestamp, step)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def log_artifact(self, path: str | Path) -> None:
        """Copy a file into the run's artefacts."""
        self.client.log_artifact(self.run_id, str(path))

    def finish(self, status: str = "FINISHED") -> None:
        """Close the run as ``"FINISHED"`` or ``"FAILED"``."""
        self.client.set_terminated(self.run_id, status=status)
