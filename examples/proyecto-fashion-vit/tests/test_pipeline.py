"""The pipeline on a few hundred real images: train, evaluate, report, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from src.models.predict_model import evaluate_model
from src.models.train_model import train
from src.visualization.visualize import make_report


@pytest.fixture(scope="module")
def trained(processed):
    train(processed)
    return processed


def test_train_saves_model_history_and_run(trained):
    models = Path(trained["paths"]["models"])
    for name in ("model.safetensors", "model.json", "history.json", "config.yaml"):
        assert (models / name).exists(), name
    if trained["tracking"]["mlflow"]:
        run = json.loads((models / "run.json").read_text())
        from src.models import tracking

        logged = tracking.client(trained).get_run(run["run_id"]).data
        assert logged.params["model.preset"] == trained["model"]["preset"]
        assert "val_accuracy" in logged.metrics


def test_evaluate_and_report(trained):
    metrics = evaluate_model(trained)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    low, high = metrics["accuracy_ci95"]
    assert low <= metrics["accuracy"] <= high
    assert len(metrics["per_class"]) == 10
    written = make_report(trained)
    assert all(path.stat().st_size > 1000 for path in written)
    assert (
        "| Exactitud |"
        in (Path(trained["paths"]["reports"]) / "results.md").read_text()
    )


def test_select_brings_back_the_champion(trained):
    if not trained["tracking"]["mlflow"]:
        pytest.skip("no MLflow in this project")
    from src.models.select_model import select

    summary = select(trained)
    assert summary["champion"]["run_id"] in {row["run_id"] for row in summary["runs"]}
    assert (Path(trained["paths"]["reports"]) / "runs.md").exists()
    assert (Path(trained["paths"]["models"]) / "model.safetensors").exists()


def test_commands_fail_with_one_line(tmp_path, capsys, processed):
    from src.models.predict_model import main

    config = {
        **processed,
        "paths": {**processed["paths"], "models": str(tmp_path / "none")},
    }
    config.pop("profile")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["--config", str(path), "--profile", "smoke"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "run `make train` first" in error[0]
