"""TP5: its checks pass on the TP's own solution and fail, saying why in Spanish, on the typical wrong answers.

The solution is taken from ``exercises/tp5/tp5.md``; a wrong answer is that solution with
one line replaced (boxes left as x, y, w, h; YOLO in pixels; AP without the envelope...).
"""

import pytest
import torch

pytest.importorskip("pycocotools")
pytest.importorskip("supervision")

from vitcourse.grading import evaluate, get_assignment
from vitcourse.grading.tp5 import reference_operating_point

from solved_tp import SolvedTP, by_test

PRELUDE = "import numpy as np\nimport torch\n"
SOLVED = SolvedTP("tp5", prelude=PRELUDE, keep=lambda source: source.lstrip().startswith("def "))
TP5, SOLUTION = SOLVED.tp, SOLVED.code
PARTS = {
    "tp5.boxes": "select_boxes",
    "tp5.masks": "masks_from_boxes",
    "tp5.coco": "to_coco_dataset",
    "tp5.yolo": "yolo_lines",
    "tp5.ap50": "ap50_per_class",
    "tp5.sweep": "threshold_sweep",
}
_with_bug = SOLVED.with_bug


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def solution():
    return SOLVED.namespace()


# --------------------------------------------------------------------------- the reference passes


@pytest.mark.parametrize("key", PARTS)
def test_the_tps_solution_passes_every_check(solution, key):
    result = evaluate(key, solution[PARTS[key]])
    assert result.score == result.points, result.to_text()


def test_the_reference_operating_point_passes():
    result = evaluate("tp5.operating_point", reference_operating_point())
    assert result.score == result.points, result.to_text()


@pytest.mark.parametrize("key", PARTS)
def test_the_student_stubs_are_pending_everywhere(key):
    result = evaluate(key, SOLVED.student_namespace()[PARTS[key]])
    assert {t.status for t in result.tests} == {"pending"} and result.score == 0


def test_the_placeholder_operating_point_is_pending():
    assert {t.status for t in evaluate("tp5.operating_point", ...).tests} == {"pending"}


def test_every_part_checks_something_and_the_points_add_up():
    tp = get_assignment("tp5")
    assert tp.total_points == 10 and sum(p.points for p in tp.auto_parts) == 9
    assert [p.key for p in tp.parts] == [
        "tp5.boxes", "tp5.masks", "tp5.coco", "tp5.yolo", "tp5.ap50", "tp5.sweep", "tp5.operating_point",
        "tp5.analysis",
    ]  # fmt: skip
    assert all(len(part.tests) >= 3 for part in tp.auto_parts)


# --------------------------------------------------------------------------- boxes

CORNERS = "corners = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)"


def test_boxes_left_as_xywh_fail_with_the_format_named():
    wrong = _with_bug(CORNERS, "corners = torch.stack([cx - w / 2, cy - h / 2, w, h], dim=-1)")
    tests = by_test(evaluate("tp5.boxes", wrong["select_boxes"]))
    corners = tests["pixel_corners"]
    assert corners.status == "fail" and "(x0, y0, x1, y1)" in corners.title and "(x, y, w, h)" in corners.hint
    assert tests["nothing_found"].status == "pass"


def test_boxes_left_as_centres_fail():
    wrong = _with_bug(CORNERS, "corners = torch.stack([cx, cy, w, h], dim=-1)")
    assert by_test(evaluate("tp5.boxes", wrong["select_boxes"]))["pixel_corners"].status == "fail"


def test_width_and_height_swapped_fail_only_on_a_non_square_image():
    wrong = _with_bug("torch.tensor([width, height, width, height])", "torch.tensor([height, width, height, width])")
    tests = by_test(evaluate("tp5.boxes", wrong["select_boxes"]))
    assert tests["not_square"].status == "fail" and tests["pixel_corners"].status == "pass"


def test_unsorted_boxes_and_ignored_text_threshold_fail():
    unsorted = _with_bug(
        "order = torch.argsort(best_prob[wanted], descending=True)",
        "order = torch.arange(int(wanted.sum()))",
    )
    assert by_test(evaluate("tp5.boxes", unsorted["select_boxes"]))["box_threshold"].status == "fail"
    no_text = _with_bug(
        "wanted = (best_prob >= box_threshold) & (best_prob >= text_threshold)",
        "wanted = best_prob >= box_threshold",
    )
    tests = by_test(evaluate("tp5.boxes", no_text["select_boxes"]))
    assert tests["text_threshold"].status == "fail" and "text_threshold" in tests["text_threshold"].hint
    assert tests["box_threshold"].status == "pass"


# --------------------------------------------------------------------------- masks


def test_boxes_not_moved_to_sams_corners_give_other_masks():
    wrong = _with_bug("    sam_boxes[:, 2:] -= 1\n", "")
    tests = by_test(evaluate("tp5.masks", wrong["masks_from_boxes"]))
    same = tests["same_masks"]
    assert same.status == "fail" and "Restá 1" in same.hint
    assert tests["mask_shapes"].status == "pass"


def test_three_masks_per_box_taking_the_first_fails():
    wrong = _with_bug("multimask_output=False)", "multimask_output=True)")
    assert by_test(evaluate("tp5.masks", wrong["masks_from_boxes"]))["same_masks"].status == "fail"


def test_encoding_the_image_once_per_box_is_caught():
    def per_box(predictor, image, boxes):
        out = []
        for box in boxes:
            predictor.set_image(image)
            corner = box.float().clone()
            corner[2:] -= 1
            out.append(predictor.predict_logits(corner[None].clamp(0, image.shape[-1] - 1))[0, 0] > 0)
        return torch.stack(out) if out else torch.zeros(0, *image.shape[-2:], dtype=torch.bool)

    tests = by_test(evaluate("tp5.masks", per_box))
    assert tests["encodes_once"].status == "fail" and tests["same_masks"].status == "pass"


# --------------------------------------------------------------------------- COCO


def test_coco_boxes_in_xyxy_fail_the_format_and_the_evaluation():
    wrong = _with_bug('"bbox": [left, top, right - left, bottom - top],', '"bbox": [left, top, right, bottom],')
    tests = by_test(evaluate("tp5.coco", wrong["to_coco_dataset"]))
    assert tests["bbox_format"].status == "fail" and "[x, y, ancho, alto]" in tests["bbox_format"].title
    assert tests["evaluates"].status == "fail" and "AP50 cajas" in tests["evaluates"].expected
    assert tests["rle_masks"].status == "pass" and tests["loads"].status == "pass"


def test_categories_from_zero_fail():
    wrong = _with_bug('"category_id": int(row["label"]) + 1,', '"category_id": int(row["label"]),')
    tests = by_test(evaluate("tp5.coco", wrong["to_coco_dataset"]))
    assert tests["categories"].status == "fail" and tests["evaluates"].status in ("fail", "error")


def test_rle_counts_left_as_bytes_cannot_be_written_as_json():
    wrong = _with_bug('encoded["counts"] = encoded["counts"].decode("ascii")', "pass")
    tests = by_test(evaluate("tp5.coco", wrong["to_coco_dataset"]))
    assert tests["loads"].status == "error" and "bytes" in tests["loads"].got


# --------------------------------------------------------------------------- YOLO


def test_yolo_in_pixels_fails_with_the_normalisation_named():
    for line in ("value / (width if i % 2 == 0 else height)", "(left + right) / 2 / width"):
        assert line in SOLVED.code, f"the solution no longer has {line!r}: update this test"
    wrong = SOLVED.namespace(
        SOLVED.code.replace("value / (width if i % 2 == 0 else height)", "value")
        .replace("(left + right) / 2 / width, (top + bottom) / 2 / height,", "(left + right) / 2, (top + bottom) / 2,")
        .replace("(right - left) / width, (bottom - top) / height,", "right - left, bottom - top,")
    )
    tests = by_test(evaluate("tp5.yolo", wrong["yolo_lines"]))
    normalised = tests["normalised"]
    assert normalised.status == "fail" and "entre 0 y 1" in normalised.title and "píxeles" in normalised.hint
    assert tests["box_lines"].status == "fail" and tests["supervision_boxes"].status == "fail"


def test_yolo_corner_instead_of_centre_fails():
    wrong = _with_bug("(left + right) / 2 / width, (top + bottom) / 2 / height,", "left / width, top / height,")
    tests = by_test(evaluate("tp5.yolo", wrong["yolo_lines"]))
    assert tests["box_lines"].status == "fail" and tests["supervision_boxes"].status == "fail"
    assert tests["normalised"].status == "pass" and tests["supervision_polygons"].status == "pass"


# --------------------------------------------------------------------------- AP50


def test_an_ap_without_the_envelope_is_wrong():
    wrong = _with_bug("envelope = np.maximum.accumulate(precision[::-1])[::-1]", "envelope = precision")
    tests = by_test(evaluate("tp5.ap50", wrong["ap50_per_class"]))
    fp = tests["false_positive_first"]
    assert fp.status == "fail" and "envolvente" in fp.hint, fp.lines()
    assert tests["perfect"].status == "pass"


def test_an_eleven_point_ap_is_wrong():
    wrong = _with_bug("np.linspace(0, 1, 101)", "np.linspace(0, 1, 11)")
    tests = by_test(evaluate("tp5.ap50", wrong["ap50_per_class"]))
    assert tests["random_like_coco"].status == "fail" and tests["perfect"].status == "pass"


def test_a_reference_matched_twice_is_wrong():
    wrong = _with_bug("free.pop(best)", "pass")
    assert by_test(evaluate("tp5.ap50", wrong["ap50_per_class"]))["random_like_coco"].status == "fail"


def test_an_absent_class_must_be_nan_not_zero():
    wrong = _with_bug('result[category["name"]] = float("nan")', 'result[category["name"]] = 0.0')
    assert by_test(evaluate("tp5.ap50", wrong["ap50_per_class"]))["empty_classes"].status == "fail"


def test_calling_the_packages_ap_does_not_count():
    from vitcourse.grading.submission import Chunk, reference_used
    from vitcourse.grading.tp5 import ap50

    code = (
        "from vitcourse.labelling import box_ap50_per_class\n"
        "def ap50_per_class(reference, predicted):\n"
        "    return box_ap50_per_class(reference, predicted)\n"
    )
    assert reference_used([Chunk(1, code)], "ap50_per_class", ap50.originals).endswith("box_ap50_per_class")


# --------------------------------------------------------------------------- the sweep


def test_a_sweep_that_ignores_the_text_threshold_fails():
    wrong = _with_bug('if r["score"] >= max(box_threshold, text_threshold)]', 'if r["score"] >= box_threshold]')
    tests = by_test(evaluate("tp5.sweep", wrong["threshold_sweep"]))
    assert tests["grid"].status == "fail" and tests["precision_recall"].status == "fail"


def test_recall_over_predictions_instead_of_references_fails():
    wrong = _with_bug(
        '"recall": hits / max(len(reference["annotations"]), 1),',
        '"recall": hits / max(len(predicted["annotations"]), 1),',
    )
    tests = by_test(evaluate("tp5.sweep", wrong["threshold_sweep"]))
    assert tests["precision_recall"].status == "fail" and tests["grid"].status == "pass"


# --------------------------------------------------------------------------- the operating point


def test_the_most_precise_point_is_not_the_asked_one():
    point = reference_operating_point()
    best = max(point["sweep"], key=lambda r: (r["precision"], -r["recall"]))
    point.update({k: best[k] for k in ("box_threshold", "text_threshold", "precision", "recall", "ap50")})
    point["justification"] = f"precisión {best['precision']:.2f}, exhaustividad {best['recall']:.2f}"
    tests = by_test(evaluate("tp5.operating_point", point))
    assert tests["best_recall"].status == "fail" and tests["is_a_row"].status == "pass"
    assert tests["cites_numbers"].status == "pass"


def test_numbers_that_are_not_the_rows_and_a_canned_justification_fail():
    point = reference_operating_point()
    point["recall"] = 0.999
    point["justification"] = "Elegí estos umbrales porque dan buenos resultados."
    tests = by_test(evaluate("tp5.operating_point", point))
    assert tests["is_a_row"].status == "fail" and tests["cites_numbers"].status == "fail"


def test_a_missing_sweep_is_listed():
    point = reference_operating_point()
    del point["ap50"]
    point["sweep"] = point["sweep"][:2]
    has_keys = by_test(evaluate("tp5.operating_point", point))["has_keys"]
    assert has_keys.status == "fail" and "ap50" in has_keys.got
