"""The experiment runner: subsets, budgets, teachers, reproducibility."""

from dataclasses import replace

import pytest
import torch

from vitcourse.checkpoints.build import RECIPES, make_datasets
from vitcourse.data import SHAPES_MEAN, SHAPES_STD
from vitcourse.experiments import ExperimentSpec, first, load_data, results_frame, run_experiment, train_transform
from vitcourse.train import CachedTeacher

TINY_VIT = {"img_size": 32, "patch_size": 8, "num_classes": 8, "embed_dim": 16, "depth": 1, "num_heads": 2,
            "mlp_ratio": 1.0}  # fmt: skip


@pytest.fixture(scope="module")
def data():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_data("shapes", train_size=48, test_size=24)
    torch.set_num_threads(threads)


def test_shapes_are_the_checkpoints_images(data):
    train, test = data
    recipe = RECIPES["vit_shapes"]
    sizes = {"train_size": 60, "val_size": 1, "test_size": 30}
    recipe_train, _, recipe_test = make_datasets(replace(recipe, data_config={**recipe.data_config, **sizes}))
    assert torch.equal(train.images, recipe_train.images[:48])  # prefixes of the same splits
    assert torch.equal(test.images, recipe_test.images[:24])
    image, label = train[5]
    assert image.shape == (3, 32, 32) and abs(image.mean().item()) < 2  # normalised
    with pytest.raises(ValueError, match="unknown data"):
        load_data("imagenet")


def test_first_takes_a_prefix_and_swaps_the_transform_on_a_copy(data):
    train, _ = data
    subset = first(train, 10, transform=lambda image: torch.zeros_like(image))
    assert len(subset) == 10 and subset.indices == list(range(10))
    assert train.transform is None  # the pool is untouched
    blank = (0 - torch.tensor(SHAPES_MEAN)) / torch.tensor(SHAPES_STD)  # the dataset normalises after the transform
    torch.testing.assert_close(subset[3][0], blank.view(3, 1, 1).expand(3, 32, 32))
    nested = first(first(train, 20), 5)
    assert nested.dataset is train and nested.indices == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="size must be"):
        first(train, 49)
    assert train_transform(train, "none") is None
    assert train_transform(train, "heavy") is not None


def test_spec_budget_and_errors():
    spec = ExperimentSpec("vit_micro_patch4_32", TINY_VIT, train_size=300, presentations=1000)
    assert spec.num_epochs == 4  # ceil(1000 / 300)
    assert spec.with_(epochs=2).num_epochs == 2
    assert spec.with_(config={"depth": 2}).config["depth"] == 2 and spec.with_(config={"depth": 2}).config["embed_dim"] == 16
    with pytest.raises(ValueError, match="exactly one budget"):
        ExperimentSpec("vit_micro_patch4_32", epochs=1, presentations=10)
    with pytest.raises(ValueError, match="augment"):
        ExperimentSpec("vit_micro_patch4_32", epochs=1, augment="extreme")
    with pytest.raises(ValueError, match="distill"):
        ExperimentSpec("vit_micro_patch4_32", epochs=1, distill="kl")


def test_runs_are_reproducible_and_report_their_numbers(data):
    train, test = data
    spec = ExperimentSpec("vit_micro_patch4_32", TINY_VIT, train_size=32, epochs=2, batch_size=16, label="tiny")
    first_run, second_run = run_experiment(spec, train, test), run_experiment(spec, train, test)
    assert first_run.test_accuracy == second_run.test_accuracy
    torch.testing.assert_close(first_run.model.head.weight, second_run.model.head.weight)
    assert len(first_run.history) == 2 and 0 <= first_run.train_accuracy <= 1
    frame = results_frame([first_run, second_run])
    assert list(frame["label"]) == ["tiny", "tiny"] and frame["epochs"].tolist() == [2, 2]
    augmented = run_experiment(spec.with_(augment="heavy"), train, test)  # MixUp/CutMix batches too
    assert not torch.allclose(augmented.model.head.weight, first_run.model.head.weight)
    with pytest.raises(ValueError, match="pool has 48"):
        run_experiment(spec.with_(train_size=100), train, test)


def test_curve_is_evaluated_every_epoch_and_never_picks_the_weights(data):
    train, test = data
    spec = ExperimentSpec("vit_micro_patch4_32", TINY_VIT, train_size=32, epochs=3, batch_size=16)
    with_curve, without = run_experiment(spec, train, test, curve=test), run_experiment(spec, train, test)
    assert len(with_curve.history["val_accuracy"]) == 3
    assert with_curve.history["val_accuracy"][-1] == pytest.approx(with_curve.test_accuracy)  # last epoch's model
    torch.testing.assert_close(with_curve.model.head.weight, without.model.head.weight)  # same training


def test_distilled_run_asks_the_teacher(data):
    train, test = data
    torch.manual_seed(0)
    from vitcourse.models import create_model

    teacher = CachedTeacher(create_model("resnet_tiny", num_classes=8, widths=(8,), depths=(1,)))
    spec = ExperimentSpec("deit_micro_distilled_patch4_32", TINY_VIT, train_size=32, epochs=2, batch_size=16,
                          distill="hard")  # fmt: skip
    result = run_experiment(spec, train, test, teacher=teacher)
    assert teacher.misses == 32 and teacher.hits == 32  # each image once, then from the cache
    assert result.model.__class__.__name__ == "DistilledViT"
    with pytest.raises(ValueError, match="no teacher"):
        run_experiment(spec, train, test)


def test_compare_accuracies_needs_more_than_noise():
    from vitcourse.experiments import compare_accuracies

    close = compare_accuracies(0.31, 0.30, 1000)
    assert close["sign"] == 0 and close["difference"] == pytest.approx(0.01)
    assert close["stderr"] == pytest.approx(((0.31 * 0.69 + 0.3 * 0.7) / 1000) ** 0.5)
    assert compare_accuracies(0.40, 0.30, 1000)["sign"] == 1
    assert compare_accuracies(0.20, 0.30, 1000)["sign"] == -1
    with pytest.raises(ValueError, match="num_samples"):
        compare_accuracies(0.5, 0.5, 0)


def test_compare_summaries_claims_only_beyond_the_sum_of_the_spreads():
    from vitcourse.experiments import compare_summaries, seed_summary

    above = compare_summaries({"mean": 0.80, "std": 0.02}, {"mean": 0.70, "std": 0.03})
    assert above["sign"] == 1
    assert above["difference"] == pytest.approx(0.10) and above["spread"] == pytest.approx(0.05)
    assert compare_summaries({"mean": 0.70, "std": 0.03}, {"mean": 0.80, "std": 0.02})["sign"] == -1
    assert compare_summaries({"mean": 0.74, "std": 0.03}, {"mean": 0.70, "std": 0.02})["sign"] == 0
    assert compare_summaries({"mean": 0.75, "std": 0.0}, {"mean": 0.5, "std": 0.25})["sign"] == 0  # equal: no claim
    # seed_summary's dicts go in as they are (min, max, n ignored)
    assert compare_summaries(seed_summary([0.9, 0.91, 0.92]), seed_summary([0.8, 0.81, 0.82]))["sign"] == 1
    with pytest.raises(ValueError, match=r"missing b\['std'\]"):
        compare_summaries({"mean": 0.5, "std": 0.1}, {"mean": 0.5})


def test_percent_spread_writes_mean_and_std_as_the_book_does():
    from vitcourse.course.render import percent, percent_spread

    assert percent_spread({"mean": 0.7341, "std": 0.0052}) == "73.4 ± 0.5\u202f%"
    assert percent_spread({"mean": 0.5, "std": 0.125}, digits=2) == "50.00 ± 12.50\u202f%"
    assert percent(0.7341, 1) == "73.4\u202f%"
    assert percent(0.012, 1, sign=True) == "+1.2\u202f%"  # a difference, signed
    assert percent(-0.012, 1, sign=True) == "-1.2\u202f%"


def test_compare_accuracies_against_several_seeds_needs_to_beat_them_all():
    from vitcourse.experiments import compare_accuracies

    assert compare_accuracies(0.40, [0.30, 0.31], 1000)["sign"] == 1
    assert compare_accuracies(0.33, [0.23, 0.31], 1000)["sign"] == 0  # inside the seeds' spread
    assert compare_accuracies(0.14, [0.23, 0.31], 1000)["sign"] == -1
    assert compare_accuracies(0.40, [0.30, 0.32], 1000)["difference"] == pytest.approx(0.09)
    with pytest.raises(ValueError, match="empty"):
        compare_accuracies(0.5, [], 100)
