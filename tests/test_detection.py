"""Detection utilities: boxes, COCO AP (ours = pycocotools), NMS, phrases, detect()."""

import numpy as np
import pytest
import torch

from vitcourse.detection.ap import average_precision, coco_area_ranges, coco_evaluate, evaluate_detections
from vitcourse.detection.boxes import denormalize_boxes, normalize_boxes
from vitcourse.detection.detect import MiniGroundingDetector, detect, split_prompt
from vitcourse.detection.nms import dense_candidates, nms_timings, suppress
from vitcourse.detection.phrases import (
    HELD_OUT,
    held_out_phrases,
    phrase,
    positives,
    seen_phrases,
    training_prompt,
    vocabulary,
)


def test_boxes_round_trip():
    boxes = torch.tensor([[2.0, 3.0, 10.0, 7.0], [0.0, 0.0, 30.0, 20.0]])
    norm = normalize_boxes(boxes, (20, 30))
    torch.testing.assert_close(norm[1], torch.tensor([0.5, 0.5, 1.0, 1.0]))
    torch.testing.assert_close(denormalize_boxes(norm, (20, 30)), boxes)


def noisy_detections(seed, num_images=25, num_classes=3, quality=3.0):
    rng = np.random.default_rng(seed)
    predictions, targets = [], []
    for _ in range(num_images):
        m = int(rng.integers(0, 5))
        corner = rng.uniform(0, 100, (m, 2))
        gt = np.concatenate([corner, corner + rng.uniform(3, 80, (m, 2))], 1)
        labels = rng.integers(0, num_classes, m)
        k = int(rng.integers(0, 8))
        source = rng.integers(0, max(m, 1), k)
        base = gt[source] if m else np.tile([10.0, 10.0, 30.0, 30.0], (k, 1))
        det = base + rng.normal(0, quality, (k, 4))
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
        det_labels = np.where(rng.random(k) < 0.85, labels[source] if m else 0, rng.integers(0, num_classes, k))
        predictions.append({"boxes": torch.tensor(det), "scores": torch.tensor(rng.random(k)),
                            "labels": torch.tensor(det_labels)})  # fmt: skip
        targets.append({"boxes": torch.tensor(gt), "labels": torch.tensor(labels)})
    return predictions, targets


@pytest.mark.parametrize("seed,image_size", [(0, None), (1, 64), (2, 640), (3, 128)])
def test_our_ap_equals_pycocotools(seed, image_size):
    predictions, targets = noisy_detections(seed)
    ours = evaluate_detections(predictions, targets, 3, image_size)
    reference = coco_evaluate(predictions, targets, 3, image_size)
    assert set(ours) == set(reference) == {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    for key in ours:
        assert ours[key] == pytest.approx(reference[key], abs=1e-6), key
    assert reference["AP50"] > 0.2  # the case is not trivial


def test_ap_of_perfect_and_empty_detections():
    _, targets = noisy_detections(4)
    perfect = [{"boxes": t["boxes"], "scores": torch.ones(len(t["labels"])), "labels": t["labels"]} for t in targets]
    assert evaluate_detections(perfect, targets, 3)["AP"] == pytest.approx(1.0)
    empty = [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)} for _ in targets]
    assert evaluate_detections(empty, targets, 3)["AP50"] == 0.0
    assert coco_evaluate(empty, targets, 3)["AP50"] == 0.0


def test_average_precision_by_hand():
    # 2 objects; detections ranked: hit, miss, hit -> precision 1, 1/2, 2/3 at recall .5, .5, 1
    ap = average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 2)
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101  # recall points 0..0.5 at precision 1, the rest at 2/3
    assert ap == pytest.approx(expected)
    assert coco_area_ranges(64)["small"][1] == pytest.approx(32**2 * (64 / 640) ** 2)


def test_nms_removes_the_duplicates_a_dense_detector_makes():
    boxes = torch.tensor([[10.0, 10.0, 30.0, 30.0], [40.0, 5.0, 60.0, 40.0]])
    labels = torch.tensor([0, 1])
    raw = dense_candidates(boxes, labels, 64, per_object=15, clutter=3, seed=0)
    assert len(raw["boxes"]) == 33
    kept = suppress(raw, 0.5)
    assert 2 <= len(kept["boxes"]) < 10
    target = [{"boxes": boxes, "labels": labels}]
    assert coco_evaluate([kept], target, 2)["AP50"] >= coco_evaluate([raw], target, 2)["AP50"]
    rows = nms_timings((50, 200), repeats=1)
    assert [r["num_boxes"] for r in rows] == [50, 200] and all(r["kept"] > 0 for r in rows)


def test_phrases_know_what_they_describe():
    red_star = phrase("star", "red")
    assert red_star.text == "estrella roja" and phrase("circle", "red").text == "círculo rojo"
    assert phrase(color="white").text == "figura blanca"
    assert red_star.describes("star", "red") and not red_star.describes("star", "blue")
    assert phrase("star").describes("star", "blue") and phrase(color="red").describes("heart", "red")
    pos = positives([red_star, phrase("star"), phrase(color="red")], [("star", "red"), ("circle", "red")])
    assert pos.tolist() == [[True, True, True], [False, False, True]]


def test_held_out_pairs_never_in_training_but_their_words_are():
    seen = seen_phrases()
    assert not {p.text for p in held_out_phrases()} & {p.text for p in seen}
    seen_words = {w for p in seen for w in p.text.split()}
    assert all(w in seen_words for p in held_out_phrases() for w in p.text.split())
    prompt = training_prompt([[("star", "red"), ("circle", "blue")]], np.random.default_rng(0), 30)
    assert all((p.shape, p.color) not in HELD_OUT for p in prompt)
    assert "figura roja" in {p.text for p in prompt} and "círculo azul" in {p.text for p in prompt}
    assert "media" in vocabulary() and "luna" in vocabulary()


def test_split_prompt():
    assert split_prompt("círculo rojo. estrella .") == ["círculo rojo", "estrella"]
    assert split_prompt(["a", " b "]) == ["a", "b"]
    with pytest.raises(ValueError, match="no phrase"):
        split_prompt(" . ")


def test_detect_applies_both_thresholds():
    from vitcourse.models import create_model

    detector = MiniGroundingDetector(create_model("grounding_detr_mini", num_queries=5))
    images = torch.rand(2, 3, 50, 70)
    everything = detect(images, "círculo. figura roja", 0.0, 0.0, detector=detector)
    assert len(everything) == 2 and len(everything[0]) == 5
    d = everything[0]
    assert d.boxes.shape == (5, 4) and d.phrase_scores.shape == (5, 2)
    assert (d.scores[:-1] >= d.scores[1:]).all()
    assert set(d.phrases) <= {"círculo", "figura roja"}
    middle = float(d.scores.median())
    fewer = detect(images, ["círculo", "figura roja"], middle, 0.0, detector=detector)[0]
    assert len(fewer) == int((d.scores >= middle).sum())
    unnamed = detect(images, "círculo. figura roja", 0.0, 1.01, detector=detector)[0]
    assert unnamed.phrases == [""] * 5 and (unnamed.labels == -1).all()
    with pytest.raises(ValueError, match="prompts"):
        detect(images, [["a"], ["b"], ["c"]], detector=detector)
