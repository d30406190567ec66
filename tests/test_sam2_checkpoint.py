"""The shipped SAM 2 re-evaluated on its held-out videos: the card's numbers, reproduced."""

from __future__ import annotations

import pytest
import torch

from vitcourse import checkpoints

NAME = "sam2_mini_world"

pytestmark = pytest.mark.skipif(NAME not in checkpoints.available(), reason=f"{NAME} is not shipped")

KEYS = (
    "miou_with_memory", "miou_without_memory", "difference_mean", "recovery_memory", "recovery_memory_click",
    "recovery_sam_click", "recovery_memory_click_frame", "recovery_unread_click_frame", "recovery_click_vs_sam_mean",
    "recovery_memory_read_mean",
)  # fmt: skip


@pytest.mark.slow
def test_sam2_mini_reproduces_its_recorded_tracking(monkeypatch):
    from vitcourse.models.sam2.training import VideoData, evaluate, make_videos, summarize

    monkeypatch.delenv("VITCOURSE_CHECKPOINTS", raising=False)
    torch.set_num_threads(1)
    entry = checkpoints.info(NAME)
    d = entry["data"]
    data = VideoData.from_card(d)
    test = make_videos(data, split=d["test_split"], size=d["test_size"])
    summary = summarize(evaluate(checkpoints.load(NAME), checkpoints.load(entry["recipe"]["base"]), test))
    recorded = entry["metrics"]["test"]
    assert summary["videos"] == recorded["videos"]
    assert summary["recovery_videos"] == recorded["recovery_videos"]
    for key in KEYS:
        assert summary[key] == pytest.approx(recorded[key], abs=1e-3), key
    # what chapter 6b claims: the memory tracks better, beyond two standard errors of the mean
    assert summary["difference_mean"] > 2 * summary["difference_sem"], summary["difference_mean"]
    # and a corrective click after an occlusion helps the tracker
    assert summary["recovery_click_gain_mean"] > 2 * summary["recovery_click_gain_sem"]


def test_the_recovery_continuation_record_follows_its_criterion():
    """The recorded continuation (chapter 6b) started from the shipped weights and was
    shipped exactly when it met its criterion."""
    from vitcourse.scripts.provenance import read_results

    record = read_results("sam2_recovery_continuation")
    card = record["card"]
    test = card["metrics"]["test"]
    shipped = checkpoints.info(NAME)["sha256"]
    assert card["recipe"]["recovery_probability"] > 0
    met = test["recovery_click_gain_mean"] > 2 * test["recovery_click_gain_sem"]
    assert record["shipped"] == met
    if record["shipped"]:
        assert card["sha256"] == shipped
    else:  # a continuation of the shipped weights, left out
        assert card["sha256"] != shipped and card["recipe"]["init"]["continued_from"]["sha256"] == shipped
