"""The shipped mini-SAM re-evaluated on its held-out images: the card's numbers, reproduced."""

from __future__ import annotations

import pytest
import torch

from vitcourse import checkpoints

NAME = "sam_mini_world"

pytestmark = pytest.mark.skipif(NAME not in checkpoints.available(), reason=f"{NAME} is not shipped")


@pytest.mark.slow
def test_sam_mini_reproduces_its_recorded_miou(monkeypatch):
    from vitcourse.models.sam.training import PROMPT_KINDS, SegmentationData, evaluate, make_instances

    monkeypatch.delenv("VITCOURSE_CHECKPOINTS", raising=False)
    torch.set_num_threads(1)
    entry = checkpoints.info(NAME)
    d = entry["data"]
    data = SegmentationData.from_card(d)
    test = make_instances(data, split=d["test_split"], size=d["test_size"])
    assert test.num_instances == entry["metrics"]["test_instances"]
    model = checkpoints.load(NAME)
    metrics = evaluate(model, test, seed=entry["metrics"]["eval_seed"])
    for kind in PROMPT_KINDS:
        for key in ("miou", "dice"):
            assert metrics[kind][key] == pytest.approx(entry["metrics"]["test"][kind][key], abs=1e-3), (kind, key)

