"""TP3: its checks pass on the TP's own solution and fail, saying why in Spanish, on the typical wrong answers.

The solution is taken from ``exercises/tp3/tp3.md``; a wrong answer is that solution with
one line replaced (the classic one: the pretrained 1000-class head kept).
"""

import pytest

pytest.importorskip("datasets")
pytest.importorskip("transformers")

from vitcourse.grading import evaluate, get_assignment
from vitcourse.grading.tp3 import reference_results

from solved_tp import SolvedTP, by_test

PRELUDE = "import torch\nfrom torch import nn\nfrom datasets import DatasetDict\n"
# The definitions; the last solution cell fills `results` from the notebook's models.
SOLVED = SolvedTP("tp3", prelude=PRELUDE, keep=lambda source: source.lstrip().startswith("def "))
TP3, SOLUTION_CELLS, SOLUTION = SOLVED.tp, SOLVED.cells, SOLVED.code
PARTS = {"tp3.splits": "make_splits", "tp3.head": "replace_head", "tp3.metrics": "course_metrics"}


_namespace, _with_bug, _by_test = SOLVED.namespace, SOLVED.with_bug, by_test


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def solution():
    return _namespace(SOLUTION)


# --------------------------------------------------------------------------- the reference passes


@pytest.mark.parametrize("key", PARTS)
def test_the_tps_solution_passes_every_check(solution, key):
    result = evaluate(key, solution[PARTS[key]])
    assert result.score == result.points, result.to_text()


def test_the_reference_results_pass_and_are_made_of_the_course_metrics():
    result = evaluate("tp3.comparison", reference_results())
    assert result.score == result.points, result.to_text()


@pytest.mark.parametrize("key", PARTS)
def test_the_student_stubs_are_pending_everywhere(key):
    result = evaluate(key, SOLVED.student_namespace()[PARTS[key]])
    assert {t.status for t in result.tests} == {"pending"} and result.score == 0


def test_the_placeholder_results_are_pending():
    result = evaluate("tp3.comparison", ...)
    assert {t.status for t in result.tests} == {"pending"}


def test_every_part_checks_something_and_the_points_add_up():
    tp = get_assignment("tp3")
    assert tp.total_points == 10 and sum(p.points for p in tp.auto_parts) == 5.5
    assert [p.key for p in tp.parts] == [
        "tp3.dataset", "tp3.splits", "tp3.head", "tp3.before", "tp3.hyperparameters", "tp3.metrics",
        "tp3.comparison", "tp3.analysis",
    ]  # fmt: skip
    assert all(len(part.tests) >= 3 for part in tp.auto_parts)


# --------------------------------------------------------------------------- the head: the original TP's bug


def test_keeping_the_pretrained_head_fails_with_its_message():
    keep = _with_bug(
        "    model.classifier = nn.Linear(model.config.hidden_size, len(labels)).to(model.device)\n", ""
    )
    result = evaluate("tp3.head", keep["replace_head"])
    tests = _by_test(result)
    outputs = tests["head_outputs"]
    assert outputs.status == "fail" and "1000" in outputs.got and "el error del TP original" in outputs.hint
    assert tests["other_labels"].status == "fail" and tests["backbone_kept"].status == "fail"
    assert tests["head_loss"].status in ("fail", "error")  # config says 3 classes, the head gives 1000 logits
    assert result.score < result.points / 2, result.to_text()


def test_returning_the_pretrained_model_unchanged_scores_nothing():
    result = evaluate("tp3.head", lambda model, labels: model)
    assert result.score == 0, result.to_text()


def test_string_keys_in_id2label_are_named():
    wrong = _with_bug(
        "model.config.id2label = {index: label for index, label in enumerate(labels)}",
        "model.config.id2label = {str(index): label for index, label in enumerate(labels)}",
    )
    tests = _by_test(evaluate("tp3.head", wrong["replace_head"]))
    config = tests["head_config"]
    assert config.status == "fail" and "id2label" in config.got and "'0'" in config.got, config.lines()
    assert "claves enteras" in config.hint
    assert tests["head_outputs"].status == "pass"


def test_an_inverted_id2label_fails():
    wrong = _with_bug(
        "model.config.id2label = {index: label for index, label in enumerate(labels)}",
        "model.config.id2label = {label: index for index, label in enumerate(labels)}",
    )
    assert _by_test(evaluate("tp3.head", wrong["replace_head"]))["head_config"].status == "fail"


def test_a_head_without_the_config_breaks_the_loss():
    wrong = _namespace(
        SOLUTION.replace("    model.config.num_labels = len(labels)\n", "").replace(
            "    model.config.id2label = {index: label for index, label in enumerate(labels)}\n"
            "    model.config.label2id = {label: index for index, label in enumerate(labels)}\n",
            "",
        )
    )
    tests = _by_test(evaluate("tp3.head", wrong["replace_head"]))
    assert tests["head_outputs"].status == "pass"
    assert tests["head_config"].status == "fail" and "num_labels" in tests["head_config"].got
    loss = tests["head_loss"]
    assert loss.status == "error" and "1000" in loss.got, loss.lines()  # view(-1, 1000) of (3, 3) logits


def test_a_sliced_imagenet_head_is_not_new():
    sliced = _with_bug(
        "    model.classifier = nn.Linear(model.config.hidden_size, len(labels)).to(model.device)\n"
        "    # as the model's own init\n"
        "    nn.init.trunc_normal_(model.classifier.weight, std=model.config.initializer_range)\n"
        "    nn.init.zeros_(model.classifier.bias)\n",
        "    old = model.classifier\n"
        "    model.classifier = nn.Linear(old.in_features, len(labels))\n"
        "    with torch.no_grad():\n"
        "        model.classifier.weight.copy_(old.weight[: len(labels)])\n"
        "        model.classifier.bias.copy_(old.bias[: len(labels)])\n",
    )
    tests = _by_test(evaluate("tp3.head", sliced["replace_head"]))
    assert tests["new_head"].status == "fail" and "ImageNet" in tests["new_head"].hint
    assert tests["head_outputs"].status == "pass" and tests["head_config"].status == "pass"


def test_a_model_rebuilt_from_the_config_loses_the_pretraining():
    def rebuilt(model, labels):
        from transformers import ViTForImageClassification

        config = model.config
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
        return ViTForImageClassification(config)

    tests = _by_test(evaluate("tp3.head", rebuilt))
    assert tests["backbone_kept"].status == "fail" and tests["head_outputs"].status == "pass"


def test_a_hard_coded_number_of_classes_fails():
    wrong = _with_bug(
        "model.classifier = nn.Linear(model.config.hidden_size, len(labels))",
        "model.classifier = nn.Linear(model.config.hidden_size, 3)",
    )
    tests = _by_test(evaluate("tp3.head", wrong["replace_head"]))
    assert tests["other_labels"].status in ("fail", "error") and tests["head_outputs"].status == "pass"


# --------------------------------------------------------------------------- the splits


def test_an_unstratified_split_fails_stratification_only():
    wrong = _with_bug(', stratify_by_column="label"', "")
    tests = _by_test(evaluate("tp3.splits", wrong["make_splits"]))
    assert tests["stratified"].status == "fail", tests["stratified"].lines()
    assert tests["disjoint"].status == "pass" and tests["split_sizes"].status == "pass"


def test_validation_taken_from_test_is_caught():
    wrong = _with_bug(
        '{"train": parts["train"], "validation": parts["test"], "test": data["test"]}',
        '{"train": data["train"], "validation": data["test"], "test": data["test"]}',
    )
    tests = _by_test(evaluate("tp3.splits", wrong["make_splits"]))
    assert tests["disjoint"].status == "fail" and tests["split_sizes"].status == "fail"


def test_a_split_that_ignores_the_seed_fails():
    wrong = _with_bug('stratify_by_column="label", seed=seed', 'stratify_by_column="label", seed=None')
    assert _by_test(evaluate("tp3.splits", wrong["make_splits"]))["reproducible"].status == "fail"


# --------------------------------------------------------------------------- the metrics


def test_a_transposed_confusion_matrix_is_named():
    wrong = _with_bug(
        "confusion = confusion.reshape(num_classes, num_classes)",
        "confusion = confusion.reshape(num_classes, num_classes).T",
    )
    tests = _by_test(evaluate("tp3.metrics", wrong["course_metrics"]))
    assert tests["orientation"].status == "fail"
    assert "Filas = clase real" in tests["orientation"].title


def test_weighted_instead_of_macro_averages_fail():
    wrong = _with_bug(
        '"recall": recall.mean().item(),',
        '"recall": (recall * confusion.sum(dim=1) / confusion.sum()).sum().item(),',
    )
    tests = _by_test(evaluate("tp3.metrics", wrong["course_metrics"]))
    assert tests["unbalanced_and_missing"].status == "fail" and "recall" in tests["unbalanced_and_missing"].got


def test_nan_for_a_class_never_predicted_fails():
    wrong = _with_bug(
        "precision = hits / confusion.sum(dim=0).clamp(min=1)",
        "precision = hits / confusion.sum(dim=0)",
    )
    tests = _by_test(evaluate("tp3.metrics", wrong["course_metrics"]))
    assert tests["unbalanced_and_missing"].status == "fail"


# --------------------------------------------------------------------------- the comparison


def test_metrics_that_do_not_come_from_the_predictions_are_named():
    results = reference_results()
    results["después"]["accuracy"] = 0.99
    consistent = _by_test(evaluate("tp3.comparison", results))["consistent"]
    assert consistent.status == "fail"
    assert "después: 'accuracy: dice 0.9900, de sus predicciones sale" in consistent.got, consistent.lines()


def test_a_transposed_confusion_in_results_is_named():
    results = reference_results()
    results["antes"]["confusion"] = results["antes"]["confusion"].T.contiguous()
    consistent = _by_test(evaluate("tp3.comparison", results))["consistent"]
    assert consistent.status == "fail" and "transpuesta" in consistent.got


def test_a_fine_tune_that_does_not_beat_the_baseline_fails():
    results = reference_results()
    results["antes"], results["después"] = results["después"], results["antes"]
    tests = _by_test(evaluate("tp3.comparison", results))
    assert tests["improves"].status == "fail" and tests["consistent"].status == "pass"


def test_models_evaluated_on_different_images_fail():
    results = reference_results()
    row = results["cabeza aleatoria"]
    row["targets"] = row["targets"].flip(0)
    tests = _by_test(evaluate("tp3.comparison", results))
    assert tests["same_targets"].status == "fail"


def test_missing_rows_and_keys_are_listed():
    results = reference_results()
    del results["cabeza aleatoria"]
    del results["antes"]["confusion"]
    has_rows = _by_test(evaluate("tp3.comparison", results))["has_rows"]
    assert has_rows.status == "fail", has_rows.lines()
