"""``make select``: compare the runs in the MLflow store and bring back the best one.

Every ``make train`` leaves a run in the store, named ``<group>-seed<seed>-<time>``
(``tracking.group`` says which variant it is). This step reads them all, summarises each
group over its seeds (mean and spread of the validation and test metrics), picks the
**champion by validation** (choosing by test would make the test score optimistic),
registers it in MLflow's model registry under the alias ``champion``, and copies its
weights and history into ``models/``, where ``make evaluate`` and ``make report`` read
them. The tables go to ``reports/runs.md``.
"""

from __future__ import annotations

import json
import logging
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..command import run
from ..errors import ProjectError
from ..provenance import provenance
from . import tracking

logger = logging.getLogger(__name__)


def finished_runs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per finished run of the experiment: ids, group, seed, metrics."""
    if not tracking.enabled(config):
        raise ProjectError(
            "make select compares MLflow runs: set tracking.mlflow: true"
        )
    client = tracking.client(config)
    experiment = client.get_experiment_by_name(config["tracking"]["experiment"])
    if experiment is None:
        raise ProjectError(
            "the MLflow store has no runs of this project: run `make train`"
        )
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
        max_results=1000,
    )
    monitor = f"best_{config['train']['monitor']}"
    return [
        {
            "run_id": r.info.run_id,
            "run_name": r.info.run_name,
            "group": r.data.params.get("tracking.group", "?"),
            "seed": r.data.params.get("seed", "?"),
            "train_images": r.data.params.get("data.train_size"),
            "val": r.data.metrics.get(monitor),
            "test_accuracy": r.data.metrics.get("test_accuracy"),
            "test_f1_macro": r.data.metrics.get("test_f1_macro"),
            "epochs": len(client.get_metric_history(r.info.run_id, "seconds")),
            "train_seconds": sum(
                m.value for m in client.get_metric_history(r.info.run_id, "seconds")
            ),
        }
        for r in runs
        if monitor in r.data.metrics
    ]


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per group: runs, mean and standard deviation of each metric (over its seeds)."""
    groups: dict[str, dict[str, float]] = {}
    for group in sorted({row["group"] for row in rows}):
        members = [row for row in rows if row["group"] == group]
        summary: dict[str, float] = {"runs": len(members)}
        for key in ("val", "test_accuracy", "test_f1_macro", "train_seconds"):
            values = [row[key] for row in members if row[key] is not None]
            if values:
                summary[f"{key}_mean"] = statistics.fmean(values)
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                summary[f"{key}_std"] = spread
        groups[group] = summary
    return groups


def champion(rows: list[dict[str, Any]], monitor: str) -> dict[str, Any]:
    """The run with the best validation metric (lowest for a loss, else highest)."""
    lower_is_better = "loss" in monitor
    return (min if lower_is_better else max)(rows, key=lambda row: row["val"])


def bring_back(config: dict[str, Any], best: dict[str, Any]) -> None:
    """Copy the champion's weights, config and history into ``models/``; register it."""
    client = tracking.client(config)
    models = Path(config["paths"]["models"])
    models.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(client.download_artifacts(best["run_id"], "model", scratch))
        for file in folder.iterdir():
            shutil.copy2(file, models / file.name)
        history = client.download_artifacts(best["run_id"], "history.json", scratch)
        shutil.copy2(history, models / "history.json")
    run_info = {"run_id": best["run_id"], "run_name": best["run_name"]}
    tracking.run_file(config).write_text(json.dumps(run_info, indent=2))
    name = config["tracking"]["experiment"]
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    source = f"runs:/{best['run_id']}/model"
    version = client.create_model_version(name, source, run_id=best["run_id"])
    client.set_registered_model_alias(name, "champion", version.version)
    logger.info(
        "champion %s registered as %s version %s",
        best["run_name"],
        name,
        version.version,
    )


def runs_markdown(rows, groups, best, monitor: str) -> str:
    """The comparison as Markdown: groups over seeds, then every run."""

    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:.4f}"

    lines = [
        "<!-- Written by `make select` from the MLflow store: do not edit. -->",
        "",
        f"| Grupo | Corridas | {monitor} (media ± desvío) | Exactitud test "
        "(media ± desvío) |",
        "|---|---|---|---|",
    ]
    for group, s in groups.items():
        val = f"{number(s.get('val_mean'))} ± {number(s.get('val_std'))}"
        test = f"{number(s.get('test_accuracy_mean'))} ± "
        test += number(s.get("test_accuracy_std"))
        lines.append(f"| {group} | {s['runs']} | {val} | {test} |")
    lines += ["", f"| Corrida | Grupo | Semilla | {monitor} | Exactitud test |"]
    lines.append("|---|---|---|---|---|")
    for row in rows:
        mark = " **(campeón)**" if row["run_id"] == best["run_id"] else ""
        lines.append(
            f"| {row['run_name']}{mark} | {row['group']} | {row['seed']} "
            f"| {number(row['val'])} | {number(row['test_accuracy'])} |"
        )
    return "\n".join(lines) + "\n"


def select(config: dict[str, Any]) -> dict[str, Any]:
    """Compare, choose, register, bring back; write ``reports/runs.{md,json}``."""
    rows = finished_runs(config)
    if not rows:
        raise ProjectError("no finished run with validation metrics: run `make train`")
    monitor = config["train"]["monitor"]
    groups = summarise(rows)
    best = champion(rows, monitor)
    bring_back(config, best)
    reports = Path(config["paths"]["reports"])
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "runs.md").write_text(runs_markdown(rows, groups, best, monitor))
    summary = {
        "runs": rows,
        "groups": groups,
        "champion": best,
        "monitor": monitor,
        "provenance": provenance(),
    }
    (reports / "runs.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    return run("select", select, argv)


if __name__ == "__main__":
    sys.exit(main())
