"""The shipped SAM 2 re-evaluated on its held-out videos: the card's numbers, reproduced."""

from __future__ import annotations

import pytest
import torch

from vitcourse import checkpoints
from vitcourse.scripts.provenance import read_results

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
    # and what the recovery record claims: with a click after an occlusion, the shipped
    # continuation recovers better than the first training, beyond two paired standard errors
    record = read_results("sam2_recovery_continuation")
    if record["shipped"]:
        paired = record["paired"]
        gain = summary["recovery_memory_click"] - paired["recovery_memory_click_before"]
        assert gain > 2 * paired["recovery_memory_click_gain_sem"], gain


def test_the_recovery_continuation_record_follows_its_criterion():
    """The recorded continuation (chapter 6b) started from the checkpoint it is compared
    with, the criterion alone decided whether it ships, and its paired means agree with
    both evaluations."""
    from vitcourse.scripts.train_sam2 import continuation_meets

    record = read_results("sam2_recovery_continuation")
    card, before, paired = record["card"], record["before"], record["paired"]
    assert card["recipe"]["recovery_probability"] > 0
    assert card["recipe"]["init"]["continued_from"]["sha256"] == before["sha256"]
    assert record["shipped"] == continuation_meets(paired)
    assert (card if record["shipped"] else before)["sha256"] == checkpoints.info(NAME)["sha256"]
    for key in ("miou_with_memory", "recovery_memory", "recovery_memory_click"):
        assert paired[f"{key}_after"] == pytest.approx(card["metrics"]["test"][key], abs=1e-6), key
        assert paired[f"{key}_before"] == pytest.approx(before["test"][key], abs=1e-6), key
