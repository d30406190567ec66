"""Auto-labelling: COCO export that pycocotools reads, and the evaluation's extremes."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("pycocotools")

from vitcourse.labelling import evaluate_labels, reference_labels, to_coco


def _world():
    masks = torch.zeros(2, 3, 20, 20, dtype=torch.bool)
    masks[0, 0, 2:7, 3:9] = True
    masks[0, 1, 10:18, 10:15] = True
    masks[0, 2, 1:4, 14:19] = True
    masks[1] = masks[0].flip(-2)
    labels = [torch.tensor([0, 1, 1]), torch.tensor([2, 0, 1])]
    return list(masks), labels


def test_reference_labels_against_themselves_are_perfect():
    masks, labels = _world()
    coco = to_coco(reference_labels(masks, labels), ["a", "b", "c"], 20)
    json.dumps(coco)  # a file the labelling tools can import
    assert coco["annotations"][0]["bbox"] == [3.0, 2.0, 6.0, 5.0]
    result = evaluate_labels(coco, coco)
    assert result["miou"] == 1.0 and result["dice"] == 1.0
    assert result["found"] == result["correct"] == result["predicted"] == 6
    assert all(ap == pytest.approx(1.0) for ap in result["mask_ap50"].values())
    assert all(ap == pytest.approx(1.0) for ap in result["box_ap50"].values())


def test_wrong_class_and_missing_labels_count_against():
    masks, labels = _world()
    reference = to_coco(reference_labels(masks, labels), ["a", "b", "c"], 20)
    wrong = [torch.tensor([1, 1, 1]), torch.tensor([2, 0, 1])]  # first instance mislabelled
    predicted = to_coco(reference_labels(masks, wrong), ["a", "b", "c"], 20)
    predicted["annotations"] = predicted["annotations"][:-1]  # last instance missed
    result = evaluate_labels(reference, predicted)
    assert result["found"] == 4 and result["correct"] == 4 and result["predicted"] == 5
    assert result["miou"] == pytest.approx(4 / 6)


def test_yolo_round_trip_through_supervision(tmp_path):
    pytest.importorskip("supervision")
    from vitcourse.labelling import read_yolo, write_yolo

    masks, labels = _world()
    images = torch.rand(2, 3, 20, 20)
    write_yolo(tmp_path, images, reference_labels(masks, labels), ["a", "b", "c"])
    back = read_yolo(tmp_path)
    assert [b["labels"].tolist() for b in back] == [lab.tolist() for lab in labels]
    for b, m in zip(back, masks):
        assert torch.equal(b["masks"], m)  # rectangles: polygons are exact


def test_yolo_image_without_objects(tmp_path):
    pytest.importorskip("supervision")
    from vitcourse.labelling import read_yolo, write_yolo

    write_yolo(tmp_path, torch.rand(1, 3, 12, 14), [[]], ["a"])
    (back,) = read_yolo(tmp_path)
    assert back["labels"].shape == (0,) and back["masks"].shape == (0, 12, 14)


def test_label_studio_converter_gives_back_our_polygons_and_classes(tmp_path):
    pytest.importorskip("label_studio_converter")
    pytest.importorskip("supervision")
    from vitcourse.labelling import label_studio_to_coco, to_label_studio, write_yolo
    from vitcourse.labelling.yolo import _polygon

    masks, labels = _world()
    rows = reference_labels(masks, labels)
    write_yolo(tmp_path / "yolo", torch.rand(2, 3, 20, 20), rows, ["a", "b", "c"])
    paths = sorted(str(p) for p in (tmp_path / "yolo" / "images").glob("*.png"))
    tasks = to_label_studio(rows, ["a", "b", "c"], paths, 20)
    json.dumps(tasks)
    coco = label_studio_to_coco(tasks, ["a", "b", "c"], tmp_path / "ls")
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert len(coco["images"]) == 2 and len(coco["annotations"]) == 6
    ours = [(i, "abc"[r["label"]], _polygon(r["mask"]).flatten().tolist()) for i, image in enumerate(rows)
            for r in image]  # fmt: skip
    theirs = [(a["image_id"], names[a["category_id"]], a["segmentation"][0]) for a in coco["annotations"]]
    assert [(i, n) for i, n, _ in theirs] == [(i, n) for i, n, _ in ours]
    for (_, _, a), (_, _, b) in zip(theirs, ours):
        assert a == pytest.approx(b, abs=1e-4)
