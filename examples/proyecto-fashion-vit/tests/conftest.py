"""Shared fixtures: the project's config, shrunk to seconds, in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.config import load_config, merge

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "data": {"train_size": 300, "val_size": 100, "test_size": 100},
    "train": {"epochs": 1, "batch_size": 50, "patience": None},
    "evaluate": {"attention_images": 4, "deletion_images": 64},
}


def tiny_config(folder: Path) -> dict:
    """The real config in the smoke profile, smaller, writing only under ``folder``."""
    config = merge(load_config(ROOT / "configs" / "config.yaml", profile="smoke"), TINY)
    config["paths"] = {
        name: str(folder / path) for name, path in config["paths"].items()
    }
    config["tracking"]["store"] = str(folder / "mlruns")
    return config


@pytest.fixture(scope="session")
def processed(tmp_path_factory) -> dict:
    """A tiny config whose ``make data`` has run (once per test session)."""
    from src.data.make_dataset import make_dataset

    config = tiny_config(tmp_path_factory.mktemp("project"))
    make_dataset(config)
    return config
