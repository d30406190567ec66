"""TP4: its checks pass on the TP's own solution and fail, saying why in Spanish, on the typical wrong answers.

The solution is taken from ``exercises/tp4/tp4.md``; a wrong answer is that solution with
one line replaced, or a real MLflow store (the solution's ``train_and_track`` run on a
few random images) read back with :func:`read_tracking` and then altered: a wrong best
epoch, a missing run, parameters that no longer match the YAML file.
"""

import ast
import copy

import pytest
import torch
import yaml

pytest.importorskip("transformers")
pytest.importorskip("sklearn")
pytest.importorskip("mlflow")

from vitcourse.grading import evaluate, get_assignment
from vitcourse.grading.build import read_source
from vitcourse.grading.tp4 import (
    read_tracking,
    reference_best_epoch,
    reference_comparison,
    reference_metrics,
    reference_tracking,
)

from solved_tp import SolvedTP, by_test

PRELUDE = """
import copy
import csv
import tempfile
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import save_model

from vitcourse.train.tracking import MlflowTracker
from vitcourse.viz import plot_confusion_matrix
"""
SOLVED = SolvedTP("tp4", prelude=PRELUDE, keep=lambda source: source.lstrip().startswith("def "))
TP4, SOLUTION = SOLVED.tp, SOLVED.code
PARTS = {"tp4.metrics": "per_class_metrics", "tp4.best_epoch": "best_epoch"}
# The notebook's own helpers that train_and_track calls (not the student's: given code).
HELPERS = ("new_model", "train_one_epoch", "predict")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def solution():
    return SOLVED.namespace()


# --------------------------------------------------------------------------- the reference passes


@pytest.mark.parametrize("key", PARTS)
def test_the_tps_solution_passes_every_check(solution, key):
    result = evaluate(key, solution[PARTS[key]])
    assert result.score == result.points, result.to_text()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tp4.metrics", reference_metrics),
        ("tp4.best_epoch", reference_best_epoch),
        ("tp4.comparison", reference_comparison()),
        ("tp4.tracking", reference_tracking()),
    ],
)
def test_the_references_pass(key, value):
    result = evaluate(key, value)
    assert result.score == result.points, result.to_text()


@pytest.mark.parametrize("key", PARTS)
def test_the_student_stubs_are_pending_everywhere(key):
    result = evaluate(key, SOLVED.student_namespace()[PARTS[key]])
    assert {t.status for t in result.tests} == {"pending"} and result.score == 0


@pytest.mark.parametrize("key", ["tp4.comparison", "tp4.tracking"])
def test_the_placeholder_values_are_pending(key):
    assert {t.status for t in evaluate(key, ...).tests} == {"pending"}


def test_every_part_checks_something_and_the_points_add_up():
    tp = get_assignment("tp4")
    assert tp.total_points == 10 and sum(p.points for p in tp.auto_parts) == 7.5
    assert [p.key for p in tp.parts] == [
        "tp4.metrics", "tp4.comparison", "tp4.comparison_analysis", "tp4.best_epoch", "tp4.tracking",
        "tp4.project_analysis",
    ]  # fmt: skip
    assert all(len(part.tests) >= 3 for part in tp.auto_parts)


# --------------------------------------------------------------------------- the metrics, against scikit-learn


def test_the_solutions_metrics_equal_scikit_learns_on_its_own_outputs(solution):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    generator = torch.Generator().manual_seed(3)
    targets = torch.randint(0, 6, (200,), generator=generator)
    predictions = torch.where(torch.rand(200, generator=generator) < 0.5, targets, torch.randint(0, 6, (200,)))
    mine = solution["per_class_metrics"](predictions, targets, 6)
    precision, recall, f1, support = precision_recall_fscore_support(targets, predictions, zero_division=0)
    assert torch.allclose(mine["precision"], torch.as_tensor(precision))
    assert torch.allclose(mine["f1"], torch.as_tensor(f1)) and mine["support"].tolist() == support.tolist()
    assert mine["macro_recall"] == pytest.approx(recall.mean())
    assert mine["confusion"].tolist() == confusion_matrix(targets, predictions).tolist()


def test_a_transposed_confusion_matrix_is_named():
    wrong = SOLVED.with_bug(").reshape(num_classes, num_classes)", ").reshape(num_classes, num_classes).T")
    tests = by_test(evaluate("tp4.metrics", wrong["per_class_metrics"]))
    assert tests["orientation"].status == "fail" and "Filas = clase real" in tests["orientation"].title
    assert tests["random_predictions"].status == "fail"


def test_weighted_instead_of_macro_averages_fail():
    wrong = SOLVED.with_bug('"macro_f1": f1.mean().item(),', '"macro_f1": (f1 * support / support.sum()).sum().item(),')
    tests = by_test(evaluate("tp4.metrics", wrong["per_class_metrics"]))
    assert tests["missing_classes"].status == "fail" and "macro_f1" in tests["missing_classes"].got


def test_nan_for_a_class_never_predicted_fails():
    wrong = SOLVED.with_bug("precision = hits / predicted.clamp(min=1)", "precision = hits / predicted")
    tests = by_test(evaluate("tp4.metrics", wrong["per_class_metrics"]))
    assert tests["missing_classes"].status == "fail" and tests["orientation"].status == "pass"


def test_missing_keys_are_named():
    tests = by_test(evaluate("tp4.metrics", lambda p, t, c: {"confusion": torch.zeros(c, c)}))
    assert tests["random_predictions"].status == "error" and "faltan las claves" in tests["random_predictions"].got


# --------------------------------------------------------------------------- the comparison


def test_metrics_that_do_not_come_from_the_predictions_are_named():
    comparison = reference_comparison()
    comparison["modelo B"]["macro_f1"] = 0.99
    consistent = by_test(evaluate("tp4.comparison", comparison))["consistent"]
    assert consistent.status == "fail" and "macro_f1: dice 0.9900, scikit-learn da" in consistent.got


def test_a_wrong_per_class_value_is_named():
    comparison = reference_comparison()
    comparison["modelo A"]["recall"] = comparison["modelo A"]["recall"].flip(0)
    consistent = by_test(evaluate("tp4.comparison", comparison))["consistent"]
    assert consistent.status == "fail" and "recall por clase" in consistent.got


def test_a_transposed_confusion_in_the_comparison_is_named():
    comparison = reference_comparison()
    comparison["modelo A"]["confusion"] = comparison["modelo A"]["confusion"].T.contiguous()
    consistent = by_test(evaluate("tp4.comparison", comparison))["consistent"]
    assert consistent.status == "fail" and "transpuesta" in consistent.got


def test_models_evaluated_on_different_images_fail():
    comparison = reference_comparison()
    row = comparison["CLIP sin ejemplos"]
    row["targets"] = row["targets"].flip(0)
    tests = by_test(evaluate("tp4.comparison", comparison))
    assert tests["same_targets"].status == "fail"


def test_fewer_than_three_models_fail():
    comparison = reference_comparison()
    del comparison["modelo B"]
    has_models = by_test(evaluate("tp4.comparison", comparison))["has_models"]
    assert has_models.status == "fail" and "al menos tres modelos" in has_models.expected


# --------------------------------------------------------------------------- the best epoch


def test_always_the_maximum_fails_for_a_loss():
    wrong = SOLVED.with_bug('sign = 1 if "loss" in monitor else -1', "sign = -1")
    tests = by_test(evaluate("tp4.best_epoch", wrong["best_epoch"]))
    assert tests["lowest"].status == "fail" and tests["highest"].status == "pass"


def test_the_last_of_tied_epochs_fails():
    wrong = SOLVED.with_bug(
        "if sign * row[monitor] < sign * chosen[monitor]:", "if sign * row[monitor] <= sign * chosen[monitor]:"
    )
    tests = by_test(evaluate("tp4.best_epoch", wrong["best_epoch"]))
    assert tests["ties"].status == "fail" and tests["highest"].status == "pass"


def test_an_index_instead_of_the_epoch_fails():
    def index_of_best(history, monitor):
        values = [row[monitor] for row in history]
        return values.index(min(values) if "loss" in monitor else max(values))

    tests = by_test(evaluate("tp4.best_epoch", index_of_best))
    assert tests["epoch_numbers"].status == "fail" and "history[i]['epoch']" in tests["epoch_numbers"].hint


# --------------------------------------------------------------------------- a real MLflow store


def _helpers() -> str:
    """The notebook's given helpers that ``train_and_track`` calls, from the TP's source."""
    found = {}
    for cell in read_source(TP4).cells:
        if cell.cell_type != "code" or "solution" in cell.metadata.get("tags", []):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # cells with IPython magics
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in HELPERS:
                found[node.name] = ast.get_source_segment(cell.source, node)
                found[node.name] = "\n".join(
                    [f"@{ast.get_source_segment(cell.source, d)}" for d in node.decorator_list] + [found[node.name]]
                )
    assert set(found) == set(HELPERS), f"the notebook no longer defines {set(HELPERS) - set(found)}"
    return "\n\n".join(found.values())


def _tracked(folder, code: str | None = None, epochs: int = 3, name: str = "config.yaml") -> tuple[str, str, object]:
    """Run the solution's (or ``code``'s) train_and_track on random images, configured by ``folder/name``, tracked
    in ``folder``'s store; the store's URI, the run id and the YAML's path."""
    from vitcourse.runtime import setup
    from vitcourse.train.tracking import resolve_tracking

    namespace = SOLVED.namespace(code)
    namespace["rt"] = setup("smoke", 0)
    exec(_helpers(), namespace)  # noqa: S102
    from vitcourse.hub import load_pretrained, load_processor
    from vitcourse.hub.vit import vit_from_hf

    namespace.update(load_pretrained=load_pretrained, load_processor=load_processor, vit_from_hf=vit_from_hf)
    namespace["CLASS_NAMES"] = [str(digit) for digit in range(10)]
    namespace["NUM_CLASSES"] = 10
    config = {"experiment": "tp4-test", "run_name": "prueba", "model": "facebook/deit-tiny-patch16-224",
              "dataset": "ruido", "train_size": 48, "validation_size": 24, "test_size": 24, "epochs": epochs,
              "batch_size": 16, "learning_rate": 0.002, "weight_decay": 0.05, "monitor": "val_f1", "seed": 0}  # fmt: skip
    config_path = folder / name
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    generator = torch.Generator().manual_seed(0)
    data = {
        split: (torch.randn(n, 3, 28, 28, generator=generator), torch.randint(0, 10, (n,), generator=generator))
        for split, n in (("train", 48), ("validation", 24), ("test", 24))
    }
    run_id = namespace["train_and_track"](config_path, data)
    return resolve_tracking(folder)[0], run_id, config_path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The solution's tracked run: (tracking URI, run id, YAML path)."""
    return _tracked(tmp_path_factory.mktemp("tp4-store"))


def test_the_solutions_real_run_passes_every_tracking_check(store):
    snapshot = read_tracking(*store)
    assert snapshot["found"] and snapshot["status"] == "FINISHED"
    assert [step for step, _ in snapshot["metrics"]["val_f1"]] == [1, 2, 3]
    names = {artifact.rsplit("/", 1)[-1] for artifact in snapshot["artifacts"]}
    assert {"config.yaml", "predictions.csv", "model.safetensors"} <= names
    assert len(snapshot["predictions"]["prediction"]) == 24
    result = evaluate("tp4.tracking", snapshot)
    assert result.score == result.points, result.to_text()


def test_a_wrong_best_epoch_fails_that_check_only(store):
    snapshot = read_tracking(*store)
    values = {step: value for step, value in snapshot["metrics"]["val_f1"]}
    best = reference_best_epoch([{"epoch": s, "val_f1": v} for s, v in values.items()], "val_f1")
    wrong = next(step for step in values if step != best)
    snapshot["metrics"]["best_epoch"] = [[wrong, float(wrong)]]
    tests = by_test(evaluate("tp4.tracking", snapshot))
    assert tests["best_is_best"].status == "fail", tests["best_is_best"].lines()
    assert (
        f"best_epoch dice {wrong}" in tests["best_is_best"].got and f"la mejor es {best}" in tests["best_is_best"].got
    )
    assert all(t.status == "pass" for name, t in tests.items() if name != "best_is_best")


def test_a_missing_run_is_named(store):
    uri, _, config_path = store
    snapshot = read_tracking(uri, "f" * 32, config_path)
    tests = by_test(evaluate("tp4.tracking", snapshot))
    assert tests["run_exists"].status == "fail" and "no está en el almacén" in tests["run_exists"].got
    assert all(t.status == "error" and "no está en el almacén" in t.got for t in tests.values() if t.status != "fail")


def test_no_run_at_all_is_pending():
    assert {t.status for t in evaluate("tp4.tracking", ...).tests} == {"pending"}


def test_params_that_do_not_match_the_yaml_are_named(store, tmp_path):
    uri, run_id, config_path = store
    edited = tmp_path / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["learning_rate"] = 0.1  # changed after the run: the run no longer says what the file says
    config["warmup"] = 0.1
    edited.write_text(yaml.safe_dump(config), encoding="utf-8")
    tests = by_test(evaluate("tp4.tracking", read_tracking(uri, run_id, edited)))
    params = tests["params_match"]
    assert params.status == "fail", params.lines()
    assert "learning_rate: la corrida dice '0.002', el YAML 0.1" in params.got and "falta el parámetro 'warmup'" in (
        params.got
    )
    assert tests["one_row_per_epoch"].status == "pass"


def test_logged_test_metrics_that_the_predictions_do_not_give_fail(store):
    snapshot = read_tracking(*store)
    snapshot["metrics"]["test_f1"] = [[1, 0.999]]
    check = by_test(evaluate("tp4.tracking", snapshot))["test_metrics"]
    assert check.status == "fail" and "test_f1 dice 0.9990" in check.got


def test_a_failed_run_and_missing_artifacts_are_named(store):
    snapshot = read_tracking(*store)
    snapshot["status"] = "FAILED"
    snapshot["artifacts"] = [a for a in snapshot["artifacts"] if not a.endswith(".safetensors")]
    tests = by_test(evaluate("tp4.tracking", snapshot))
    assert tests["run_exists"].status == "fail" and "FAILED" in tests["run_exists"].got
    assert tests["artifacts"].status == "fail" and "el modelo" in tests["artifacts"].got


def test_metrics_logged_from_step_0_fail_one_row_per_epoch(store):
    code = SOLVED.code.replace('if k != "epoch"}, step=epoch', 'if k != "epoch"}, step=epoch - 1')
    assert code != SOLVED.code, "the solution no longer logs with step=epoch: update this test"
    folder = store[2].parent  # a second run in the same store (creating a store takes seconds)
    snapshot = read_tracking(*_tracked(folder, code, epochs=2, name="config_step0.yaml"))
    tests = by_test(evaluate("tp4.tracking", snapshot))
    rows = tests["one_row_per_epoch"]
    assert rows.status == "fail" and "pasos [0, 1], se esperaban [1, 2]" in rows.got, rows.lines()
    assert tests["params_match"].status == "pass" and tests["artifacts"].status == "pass"


def test_the_snapshot_is_plain_data(store):
    from vitcourse.grading.probes import to_wire

    snapshot = read_tracking(*store)
    assert to_wire(copy.deepcopy(snapshot)) == snapshot


# --------------------------------------------------------------------------- the full profile's code, on stand-ins


def test_the_full_profiles_comparison_runs_on_stand_ins():
    """The linear probes (ViT, DeiT, Swin) and CLIP on RGB photos, as `full` runs them on beans, here with the
    offline stand-ins: the code `smoke` never executes still runs and gives one class per test image."""
    from vitcourse.finetune import load_image_dataset
    from vitcourse.runtime import setup

    wanted = ("pixels", "features", "probe_predictions", "clip_predictions", "model_predictions")
    namespace = {}
    exec(  # noqa: S102
        "import numpy as np\nimport torch\nimport torch.nn.functional as F\nfrom vitcourse import checkpoints\n"
        "from vitcourse.data import FASHION_MEAN, FASHION_STD\nfrom vitcourse.hub import load_pretrained, "
        "load_processor",
        namespace,
    )
    for cell in read_source(TP4).cells:
        if cell.cell_type != "code" or "solution" in cell.metadata.get("tags", []):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            names = [getattr(target, "id", "") for target in getattr(node, "targets", [])]
            if getattr(node, "name", "") in wanted or {"PROMPT_NAMES", "TEMPLATES"} & set(names):
                exec(compile(ast.Module(body=[node], type_ignores=[]), "tp4.md", "exec"), namespace)  # noqa: S102
    photos = load_image_dataset("photos", profile="smoke", sizes={"train": 24, "validation": 6, "test": 12}, seed=0)
    namespace.update(rt=setup("smoke", 0), compare=photos, COMPARE_DATASET="beans")
    namespace["COMPARE_CLASSES"] = photos["test"].features["label"].names
    for hub_id in ("google/vit-base-patch16-224", "microsoft/swin-tiny-patch4-window7-224"):
        predictions = namespace["model_predictions"]("probe", hub_id)
        assert predictions.shape == (12,) and predictions.max() < len(namespace["COMPARE_CLASSES"])
    clip = namespace["model_predictions"]("clip", "openai/clip-vit-base-patch32")  # beans' prompts: 3 classes
    assert clip.shape == (12,) and set(clip.tolist()) <= {0, 1, 2}
