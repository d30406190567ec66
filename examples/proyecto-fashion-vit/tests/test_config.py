"""The config: the smoke profile applies its section; a bad value is named."""

from __future__ import annotations

import pytest
import yaml

from src.config import load_config
from src.errors import ProjectError

from .conftest import ROOT

CONFIG = ROOT / "configs" / "config.yaml"


def test_smoke_profile_shrinks_the_run():
    full, smoke = (
        load_config(CONFIG, profile="full"),
        load_config(CONFIG, profile="smoke"),
    )
    assert full["data"]["train_size"] is None
    assert smoke["data"]["train_size"] < 10_000
    assert smoke["train"]["epochs"] < full["train"]["epochs"]
    assert smoke["profile"] == "smoke" and "smoke" not in smoke


@pytest.mark.parametrize(
    ("section", "key", "value", "named"),
    [
        ("train", "epochs", 0, "train.epochs"),
        ("model", "architecture", "resnet", "model.architecture"),
        ("data", "dataset", "imagenet", "data.dataset"),
        ("features", "flip", "sometimes", "features.flip"),
    ],
)
def test_bad_values_are_named(tmp_path, section, key, value, named):
    raw = yaml.safe_load(CONFIG.read_text())
    raw[section][key] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ProjectError, match=named):
        load_config(path, profile="full")


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ProjectError, match="no config file"):
        load_config(tmp_path / "nope.yaml")
