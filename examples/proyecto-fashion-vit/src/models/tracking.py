"""MLflow with a local store: a SQLite file and a folder of artefacts, no server.

``make train`` opens the run (through ``vitcourse.train.fit``); ``make evaluate`` and
``make report`` add the test metrics and the figures to the same run, found again by
the id saved in ``models/run.json``. ``make mlflow-ui`` shows them in the browser.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ProjectError

logger = logging.getLogger(__name__)


def enabled(config: dict[str, Any]) -> bool:
    return bool(config["tracking"]["mlflow"])


def store(config: dict[str, Any]) -> str:
    """The store folder, as ``fit(mlflow=...)`` takes it (a SQLite file inside)."""
    return config["tracking"]["store"]


def tracking_uri(config: dict[str, Any]) -> str:
    from vitcourse.train.tracking import resolve_tracking

    return resolve_tracking(store(config))[0]


def client(config: dict[str, Any]):
    """An ``MlflowClient`` on the project's store (progress bars off: no printing)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ProjectError(
            "tracking.mlflow is true but mlflow is not installed: pip install mlflow"
        ) from None
    return MlflowClient(tracking_uri=tracking_uri(config))


def find_run(config: dict[str, Any], run_name: str) -> str:
    """The id of the newest run called ``run_name`` in the project's experiment."""
    mlflow = client(config)
    experiment = mlflow.get_experiment_by_name(config["tracking"]["experiment"])
    runs = mlflow.search_runs(
        [experiment.experiment_id],
        filter_string=f"attributes.run_name = '{run_name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id


def run_file(config: dict[str, Any]) -> Path:
    return Path(config["paths"]["models"]) / "run.json"


def saved_run(config: dict[str, Any]) -> str | None:
    """The MLflow run id ``make train`` saved, or ``None`` without tracking."""
    path = run_file(config)
    if not enabled(config) or not path.exists():
        return None
    return json.loads(path.read_text())["run_id"]


def log_metrics(config: dict[str, Any], metrics: dict[str, float]) -> None:
    """Add numbers to the training run (no-op without tracking)."""
    run_id = saved_run(config)
    if run_id is None:
        return
    mlflow = client(config)
    for name, value in metrics.items():
        mlflow.log_metric(run_id, name, float(value))
    logger.info("logged %d metrics to MLflow run %s", len(metrics), run_id)


def log_artifacts(
    config: dict[str, Any], paths: list[Path], folder: str | None = None
) -> None:
    """Copy the files that exist into the run's artefacts (no-op without tracking)."""
    run_id = saved_run(config)
    if run_id is None:
        return
    mlflow = client(config)
    for path in paths:
        if Path(
            path
        ).exists():  # a step called from Python, not `make`, writes no log file
            mlflow.log_artifact(run_id, str(path), folder)
