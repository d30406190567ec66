"""The shipped mini-SAM re-evaluated on its held-out images: the card's numbers, reproduced."""

from __future__ import annotations

import pytest
import torch

from vitcourse import checkpoints

NAME = "sam_mini_world"
#: The mini-SAM fine-tuned on nested shapes (chapter 6's part/whole ambiguity).
NESTED = "sam_mini_nested"


def _shipped(name):
    return pytest.param(
        name, marks=pytest.mark.skipif(name not in checkpoints.available(), reason=f"{name} is not shipped")
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", [_shipped(NAME), _shipped(NESTED)])
def test_sam_mini_reproduces_its_recorded_miou(name, monkeypatch):
    from vitcourse.models.sam.training import PROMPT_KINDS, SegmentationData, evaluate, make_instances

    monkeypatch.delenv("VITCOURSE_CHECKPOINTS", raising=False)
    torch.set_num_threads(1)
    entry = checkpoints.info(name)
    d = entry["data"]
    data = SegmentationData.from_card(d)
    test = make_instances(data, split=d["test_split"], size=d["test_size"])
    assert test.num_instances == entry["metrics"]["test_instances"]
    model = checkpoints.load(name)
    metrics = evaluate(model, test, seed=entry["metrics"]["eval_seed"])
    for kind in PROMPT_KINDS:
        for key in ("miou", "dice"):
            assert metrics[kind][key] == pytest.approx(entry["metrics"]["test"][kind][key], abs=1e-3), (kind, key)
    assert metrics["box"]["miou"] >= 0.80 and metrics["one_point"]["miou"] >= 0.60  # the targets


@pytest.mark.slow
@pytest.mark.skipif(NESTED not in checkpoints.available(), reason=f"{NESTED} is not shipped")
def test_sam_mini_finds_part_and_whole_from_one_point(monkeypatch):
    """Chapter 6's ambiguity claim: one point on a nested shape gives the part and the whole."""
    from vitcourse.models.sam.ambiguity import nested_metrics
    from vitcourse.models.sam.training import SegmentationData, make_instances, normalize

    monkeypatch.delenv("VITCOURSE_CHECKPOINTS", raising=False)
    torch.set_num_threads(1)
    entry = checkpoints.info(NESTED)
    recorded = entry["metrics"]["nested"]
    data = SegmentationData.from_card(entry["data"])
    nested = make_instances(data, split=recorded["split"], size=recorded["images"], nested=recorded["nested"])
    measured = nested_metrics(checkpoints.load(NESTED), nested, normalize)
    for key in ("part_iou", "whole_iou", "both"):
        assert measured[key] == pytest.approx(recorded[key], abs=1e-3), key
    assert measured["both"] > 0.5  # both among the three masks in most nested images
