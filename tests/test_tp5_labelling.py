"""Auto-labelling, step by step: the files are read by the tools' own readers, the metrics by hand.

COCO is written to a JSON file and read back by ``pycocotools.COCO`` and evaluated by
``COCOeval``; YOLO boxes and polygons by ``supervision``'s ``DetectionDataset.from_yolo``;
Label Studio tasks by ``label-studio-converter``, whose COCO ``pycocotools`` evaluates
against ours. AP50 is checked on a case computed by hand; the step functions agree with
``detect`` and ``label_images``.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math

import numpy as np
import pytest
import torch

pytest.importorskip("pycocotools")

from vitcourse.labelling import (
    box_ap50_per_class,
    choose_operating_point,
    evaluate_labels,
    match_counts,
    reference_labels,
    threshold_sweep,
    to_coco,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _rows():
    masks = torch.zeros(2, 3, 24, 32, dtype=torch.bool)  # not square: H 24, W 32
    masks[0, 0, 2:7, 3:9] = True
    masks[0, 1, 10:18, 10:15] = True
    masks[0, 2, 1:4, 20:30] = True
    masks[1, 0, 12:20, 2:12] = True
    masks[1, 1, 3:9, 14:22] = True
    masks[1, 2, 15:23, 24:31] = True
    labels = [torch.tensor([0, 1, 1]), torch.tensor([2, 0, 1])]
    return reference_labels(list(masks), labels)


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _two_boxes_one_false_positive_first():
    """One class, two references; predictions: a false positive (0.9), then two hits (0.8, 0.7).

    Precision 0, 1/2, 2/3 at recall 0, 1/2, 1: the envelope is 2/3 at every recall, so
    AP50 = 2/3 exactly.
    """
    reference = [[{"label": 0, "score": 1.0, "box": [2, 2, 12, 12], "mask": None},
                  {"label": 0, "score": 1.0, "box": [30, 30, 42, 38], "mask": None}]]  # fmt: skip
    predicted = [[{"label": 0, "score": 0.9, "box": [40, 2, 50, 12], "mask": None},
                  {"label": 0, "score": 0.8, "box": [3, 2, 13, 12], "mask": None},
                  {"label": 0, "score": 0.7, "box": [30, 31, 42, 39], "mask": None}]]  # fmt: skip
    return to_coco(reference, ["a"], [(64, 64)]), to_coco(predicted, ["a"], [(64, 64)])


def test_coco_file_loads_and_evaluates_with_pycocotools(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rows = _rows()
    dataset = to_coco(rows, ["a", "b", "c"], [(24, 32), (24, 32)])
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(dataset), encoding="utf-8")
    with _quiet():
        gt = COCO(str(path))
    assert sorted(gt.getImgIds()) == [1, 2] and gt.imgs[1]["height"] == 24 and gt.imgs[1]["width"] == 32
    assert [c["name"] for c in gt.loadCats(gt.getCatIds())] == ["a", "b", "c"]
    for annotation, row in zip(gt.loadAnns(sorted(gt.getAnnIds())), [r for image in rows for r in image]):
        assert np.array_equal(gt.annToMask(annotation).astype(bool), row["mask"].numpy())
        assert annotation["area"] == row["mask"].sum().item()
    with _quiet():
        results = tmp_path / "results.json"  # the same labels as detections (they carry scores)
        results.write_text(json.dumps(dataset["annotations"]), encoding="utf-8")
        detections = gt.loadRes(str(results))
        for iou_type in ("bbox", "segm"):
            evaluation = COCOeval(gt, detections, iou_type)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
            assert evaluation.stats[1] == pytest.approx(1.0)  # AP50


def test_ap50_by_hand_two_thirds():
    reference, predicted = _two_boxes_one_false_positive_first()
    assert box_ap50_per_class(reference, predicted) == {"a": pytest.approx(2 / 3)}
    assert match_counts(reference, predicted) == {"correct": 2, "predicted": 3, "reference": 2}


def test_ap50_nan_for_absent_class_zero_for_missed_class():
    reference, predicted = _two_boxes_one_false_positive_first()
    reference["categories"] += [{"id": 2, "name": "b"}, {"id": 3, "name": "c"}]
    reference["annotations"].append(
        {"id": 9, "image_id": 1, "category_id": 2, "bbox": [50, 50, 6, 6], "area": 36.0, "iscrowd": 0}
    )
    ap = box_ap50_per_class(reference, predicted)
    assert ap["a"] == pytest.approx(2 / 3) and ap["b"] == 0.0 and math.isnan(ap["c"])


def test_dice_and_miou_by_hand():
    reference = [[{"label": 0, "score": 1.0, "box": [0, 0, 4, 4], "mask": torch.zeros(8, 8, dtype=torch.bool)}]]
    reference[0][0]["mask"][0:4, 0:4] = True  # 16 pixels
    predicted = [[{"label": 0, "score": 0.9, "box": [0, 0, 4, 2], "mask": torch.zeros(8, 8, dtype=torch.bool)}]]
    predicted[0][0]["mask"][0:2, 0:4] = True  # 8 pixels, all inside
    quality = evaluate_labels(to_coco(reference, ["a"], 8), to_coco(predicted, ["a"], 8))
    assert quality["miou"] == pytest.approx(8 / 16) and quality["dice"] == pytest.approx(2 * 8 / (16 + 8))
    assert quality["found"] == 1  # IoU 0.5 counts


def test_box_only_rows_and_sizes_per_image():
    rows = [[{"label": 1, "score": 0.5, "box": [1.0, 2.0, 5.0, 10.0], "mask": None}], []]
    dataset = to_coco(rows, ["a", "b"], [(20, 30), (40, 50)])
    (annotation,) = dataset["annotations"]
    assert annotation["bbox"] == [1.0, 2.0, 4.0, 8.0] and annotation["area"] == 32.0
    assert "segmentation" not in annotation and annotation["category_id"] == 2
    assert [(i["height"], i["width"]) for i in dataset["images"]] == [(20, 30), (40, 50)]
    with pytest.raises(ValueError, match="image sizes"):
        to_coco(rows, ["a", "b"], [(20, 30)])


def test_yolo_boxes_and_polygons_read_by_supervision(tmp_path):
    pytest.importorskip("supervision")
    from vitcourse.labelling import read_yolo, write_yolo, yolo_lines

    rows = _rows()
    images = torch.rand(2, 3, 24, 32)
    write_yolo(tmp_path / "boxes", images, rows, ["a", "b", "c"], kind="boxes")
    write_yolo(tmp_path / "polygons", images, rows, ["a", "b", "c"], kind="polygons")
    first = (tmp_path / "boxes" / "labels" / "00000.txt").read_text().splitlines()[0].split()
    assert first == ["0", f"{6 / 32:.6f}", f"{4.5 / 24:.6f}", f"{6 / 32:.6f}", f"{5 / 24:.6f}"]  # cx cy w h
    for image_rows, back in zip(rows, read_yolo(tmp_path / "boxes")):
        assert back["labels"].tolist() == [r["label"] for r in image_rows]
        assert torch.allclose(back["boxes"], torch.tensor([r["box"] for r in image_rows], dtype=torch.float64),
                              atol=1e-3)  # fmt: skip
    for image_rows, back in zip(rows, read_yolo(tmp_path / "polygons")):
        assert back["labels"].tolist() == [r["label"] for r in image_rows]
        for row, mask in zip(image_rows, back["masks"]):
            assert torch.equal(mask, row["mask"])  # rectangles: polygons are exact
    every = [v for line in yolo_lines(rows[0], (24, 32), "polygons") for v in map(float, line.split()[1:])]
    assert every and all(0 <= v <= 1 for v in every)
    with pytest.raises(ValueError, match="kind"):
        yolo_lines(rows[0], (24, 32), "xyxy")


def test_label_studio_coco_evaluated_against_ours(tmp_path):
    pytest.importorskip("label_studio_converter")
    pytest.importorskip("supervision")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from vitcourse.labelling import label_studio_to_coco, to_label_studio, write_yolo

    rows = [[{**r, "box": list(r["box"])} for r in image] for image in _rows()]
    square = [[{**r, "mask": torch.nn.functional.pad(r["mask"], (0, 0, 0, 8))} for r in image] for image in rows]
    write_yolo(tmp_path / "yolo", torch.rand(2, 3, 32, 32), square, ["a", "b", "c"])
    paths = sorted(str(p) for p in (tmp_path / "yolo" / "images").glob("*.png"))
    theirs = label_studio_to_coco(to_label_studio(square, ["a", "b", "c"], paths, 32), ["a", "b", "c"], tmp_path / "ls")
    ours = to_coco(square, ["a", "b", "c"], 32)
    by_name = {c["name"]: c["id"] for c in ours["categories"]}
    names = {c["id"]: c["name"] for c in theirs["categories"]}
    from pycocotools import mask as mask_utils

    results = []
    for a in theirs["annotations"]:  # their polygons, rasterised by pycocotools
        rle = mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], 32, 32))
        rle["counts"] = rle["counts"].decode("ascii")
        category = by_name[names[a["category_id"]]]
        results.append({"image_id": a["image_id"] + 1, "category_id": category, "segmentation": rle, "score": 1.0})
    gt = COCO()
    gt.dataset = ours
    with _quiet():
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), "segm")
        evaluation.evaluate()
        evaluation.accumulate()
    ap50 = evaluation.eval["precision"][0, :, :, 0, -1].mean(axis=0)
    assert ap50.tolist() == pytest.approx([1.0, 1.0, 1.0])  # same images, classes and (polygon) masks


@pytest.fixture(scope="module")
def world():
    from vitcourse import checkpoints
    from vitcourse.detection import load_detector
    from vitcourse.labelling.sets import labelling_set
    from vitcourse.models.sam.training import normalize

    data = labelling_set("smoke", 6)
    return data, load_detector("smoke"), checkpoints.load("sam_mini_world"), normalize


def test_select_boxes_and_masks_agree_with_detect_and_label_images(world):
    from vitcourse.detection import detect
    from vitcourse.labelling import (
        SamBoxPredictor,
        detector_outputs,
        label_images,
        masks_from_boxes,
        select_boxes,
    )

    data, detector, sam, normalize = world
    images = torch.stack(data.images)
    found = detect(images, data.phrases, 0.3, 0.4, detector=detector)
    labelled = label_images(images, data.phrases, sam, normalize, 0.3, 0.4, detector=detector)
    predictor = SamBoxPredictor(sam, normalize)
    for image, outputs, detections, rows in zip(images, detector_outputs(images, data.phrases, detector), found,
                                                labelled):  # fmt: skip
        mine = select_boxes(outputs, (64, 64), 0.3, 0.4)
        named = detections.labels >= 0
        assert torch.equal(mine["boxes"], detections.boxes[named])
        assert torch.equal(mine["labels"], detections.labels[named])
        masks = masks_from_boxes(predictor, image, mine["boxes"])
        assert len(masks) == len(rows) and all(torch.equal(m, r["mask"]) for m, r in zip(masks, rows))
    assert sum(map(len, labelled)) > 0


def test_sweep_is_monotone_and_the_operating_point_follows_the_numbers(world):
    from vitcourse.labelling import label_images

    data, detector, sam, normalize = world
    candidates = label_images(torch.stack(data.images), data.phrases, sam, normalize, 0.1, 0.1, detector=detector)
    reference = to_coco(data.reference, data.classes, data.sizes)
    sweep = threshold_sweep(candidates, reference, [0.1, 0.4, 0.7], [0.1, 0.5])
    assert [(r["box_threshold"], r["text_threshold"]) for r in sweep] == [
        (0.1, 0.1), (0.1, 0.5), (0.4, 0.1), (0.4, 0.5), (0.7, 0.1), (0.7, 0.5)]  # fmt: skip
    for text in (0.1, 0.5):
        column = [r for r in sweep if r["text_threshold"] == text]
        assert all(
            a["recall"] >= b["recall"] and a["predicted"] >= b["predicted"] for a, b in itertools.pairwise(column)
        )
    # the text threshold only acts above the box threshold (both compare the best phrase probability)
    assert sweep[4]["predicted"] == sweep[5]["predicted"] and sweep[0]["predicted"] >= sweep[1]["predicted"]
    chosen = choose_operating_point(sweep, 0.0)
    assert chosen["recall"] == max(r["recall"] for r in sweep)
    with pytest.raises(ValueError, match="reaches precision"):
        choose_operating_point(sweep, 1.01)


def test_sam2_predictor_runs_offline_on_the_tiny_random_model():
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "Sam2Processor"):
        pytest.skip("this transformers has no SAM 2")
    from vitcourse.hub import load_pretrained
    from vitcourse.labelling import Sam2BoxPredictor, masks_from_boxes

    model = load_pretrained("facebook/sam2.1-hiera-tiny", profile="smoke", verbose=False)
    processor = transformers.Sam2Processor(
        image_processor=transformers.Sam2ImageProcessorFast(size={"height": 64, "width": 64})
    )
    predictor = Sam2BoxPredictor(model, processor)
    image = torch.rand(3, 48, 80)  # not square: the masks come back at the image's size
    masks = masks_from_boxes(predictor, image, torch.tensor([[5.0, 5.0, 30.0, 40.0], [40.0, 10.0, 80.0, 48.0]]))
    assert masks.shape == (2, 48, 80) and masks.dtype == torch.bool
    assert masks_from_boxes(predictor, image, torch.zeros(0, 4)).shape == (0, 48, 80)


def test_full_profile_reads_cppe5_boxes_as_reference_rows(monkeypatch):
    """CPPE-5's rows (COCO x, y, w, h boxes, class ids) become reference rows; no network: a fake data set."""
    from PIL import Image

    from vitcourse.data import remote
    from vitcourse.labelling.sets import CPPE5_CLASSES, CPPE5_ID, CPPE5_REVISION, labelling_set

    class Rows(list):
        def select(self, indices):
            return Rows(self[i] for i in indices)

    pixels = np.zeros((30, 40, 3), dtype=np.uint8)
    pixels[5:10, 8:20] = 255
    rows = Rows([
        {"image": Image.fromarray(pixels), "objects": {"bbox": [[8.0, 5.0, 12.0, 5.0], [0.0, 0.0, 4.0, 6.0]],
                                                      "category": [4, 2]}},
        {"image": Image.fromarray(pixels[:20]), "objects": {"bbox": [], "category": []}},
    ])  # fmt: skip
    calls = []
    monkeypatch.setattr(remote, "load_hub_dataset", lambda *a, **k: calls.append((a, k)) or rows)
    data = labelling_set("full", size=2)
    assert calls == [((CPPE5_ID,), {"split": "test", "revision": CPPE5_REVISION})]
    assert data.classes == CPPE5_CLASSES and len(data.phrases) == len(CPPE5_CLASSES)
    assert data.sizes == [(30, 40), (20, 40)] and data.images[0].max() == 1.0
    assert [[(r["label"], r["box"], r["mask"]) for r in image] for image in data.reference] == [
        [(4, [8.0, 5.0, 20.0, 10.0], None), (2, [0.0, 0.0, 4.0, 6.0], None)], []]  # fmt: skip
    coco = to_coco(data.reference, data.classes, data.sizes)
    assert [a["bbox"] for a in coco["annotations"]] == [[8.0, 5.0, 12.0, 5.0], [0.0, 0.0, 4.0, 6.0]]
    assert [a["category_id"] for a in coco["annotations"]] == [5, 3]
