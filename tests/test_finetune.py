"""vitcourse.finetune: datasets built right, the head really replaced, freezing, a fine-tune that learns.

Offline and on the CPU: the model is the smoke stand-in for google/vit-base-patch16-224
(the shipped ``vit_fashion_tiny`` checkpoint, a tiny ViT trained on Fashion-MNIST, converted to
Hugging Face), one thread; the new task is MNIST's handwritten digits.
"""

import pytest
import torch

datasets = pytest.importorskip("datasets")
pytest.importorskip("transformers")

from vitcourse import finetune as ft  # noqa: E402
from vitcourse.data import FASHION_MEAN, DataUnavailableError  # noqa: E402
from vitcourse.hub import load_processor  # noqa: E402
from vitcourse.train import classification_metrics  # noqa: E402

COLORS = ("red", "green", "blue")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: faster, and identical reruns
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return ft.load_image_dataset("mnist", sizes={"train": 400, "validation": 100, "test": 200})


@pytest.fixture(scope="module")
def processor():
    model = ft.load_for_finetuning([str(d) for d in range(10)], profile="smoke", verbose=False)
    return load_processor("google/vit-base-patch16-224", model=model, profile="smoke", verbose=False)


def digits_model(seed=0):
    return ft.load_for_finetuning([str(d) for d in range(10)], profile="smoke", seed=seed, verbose=False)


# -- data sets ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ft.LOCAL_DATASETS))
def test_local_datasets_have_splits_image_and_classlabel(name):
    data = ft.load_image_dataset(name, sizes={"train": 24, "validation": 12, "test": 12}, seed=1)
    assert isinstance(data, datasets.DatasetDict) and list(data) == ["train", "validation", "test"]
    for split in data.values():
        assert isinstance(split.features["image"], datasets.Image)
        assert isinstance(split.features["label"], datasets.ClassLabel)
        assert split.features["label"].names == data["train"].features["label"].names
    names = data["train"].features["label"].names
    assert len(names) >= 2 and len(set(names)) == len(names)
    assert [len(split) for split in data.values()] == [24, 12, 12]
    image = data["train"][0]["image"]
    assert image.mode in ("L", "RGB") and min(image.size) >= 8
    labels = set(data["train"]["label"])
    assert labels <= set(range(len(names))) and len(labels) > 1


def test_local_datasets_are_deterministic_and_splits_differ():
    first = ft.load_image_dataset("shapes", sizes={"train": 8, "validation": 8, "test": 8}, seed=3)
    again = ft.load_image_dataset("shapes", sizes={"train": 8, "validation": 8, "test": 8}, seed=3)
    pixels = {split: [im.tobytes() for im in first[split]["image"]] for split in first}
    assert pixels["train"] == [im.tobytes() for im in again["train"]["image"]]
    assert pixels["train"] != pixels["validation"] != pixels["test"]


def test_shape_colors_labels_name_the_painted_colour():
    import numpy as np

    from vitcourse.data import COLORS as PALETTE

    data = ft.load_image_dataset("shape-colors", sizes={"train": 40, "validation": 2, "test": 2})
    names = data["train"].features["label"].names
    assert names == list(PALETTE)
    found = 0
    for example in data["train"]:
        pixels = np.asarray(example["image"], dtype=np.float32) / 255  # (H, W, 3)
        target = np.array(PALETTE[names[example["label"]]].rgb)
        found += bool((np.abs(pixels - target).max(axis=-1) < 0.06).any())  # colour jitter is +-0.04
    assert found >= 38, found


def test_digits_keep_the_fixed_split(digits):
    full = ft.load_image_dataset("digits")
    assert [len(split) for split in full.values()] == [1257, 180, 360]
    assert full["train"].features["label"].names == [str(d) for d in range(10)]
    assert full["train"][0]["image"].size == (8, 8)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="sizes must map train/validation/test"):
        ft.load_image_dataset("digits", sizes={"val": 10})


def test_hub_dataset_in_smoke_says_so_in_one_line():
    with pytest.raises(DataUnavailableError) as info:
        ft.load_image_dataset("beans", profile="smoke")
    message = str(info.value)
    assert "\n" not in message and "PROFILE='smoke' downloads nothing" in message and "digits" in message


def test_hub_dataset_offline_and_not_cached_fails_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(DataUnavailableError) as info:
        ft.load_image_dataset("beans", profile="full")
    assert "\n" not in str(info.value) and "beans" in str(info.value)


# -- pre-processing ------------------------------------------------------------------------


def test_transform_and_collate_make_model_inputs(digits, processor):
    data = digits["train"].with_transform(ft.processor_transform(processor))
    batch = ft.collate([data[i] for i in range(5)])
    assert batch["pixel_values"].shape == (5, 3, 28, 28) and batch["pixel_values"].dtype == torch.float32
    assert batch["labels"].tolist() == digits["train"]["label"][:5]
    assert processor.image_mean == pytest.approx([FASHION_MEAN] * 3)  # the stand-in normalises as it was trained
    assert batch["pixel_values"].abs().max() < 3 and batch["pixel_values"].std() > 0.5  # standardised, not [0, 1]
    with pytest.raises(KeyError, match="with_transform"):
        ft.collate([digits["train"][0]])


# -- the head --------------------------------------------------------------------------------


def test_head_is_replaced_with_the_data_sets_labels():
    labels = ["angular_leaf_spot", "bean_rust", "healthy"]
    model = ft.load_for_finetuning(labels, profile="smoke", verbose=False)
    assert model.provenance.stand_in
    assert ft.head_of(model).out_features == 3 and model.config.num_labels == 3
    assert model.config.id2label == {0: "angular_leaf_spot", 1: "bean_rust", 2: "healthy"}
    assert model.config.label2id == {"angular_leaf_spot": 0, "bean_rust": 1, "healthy": 2}
    side = model.config.image_size
    assert model(torch.randn(2, 3, side, side)).logits.shape == (2, 3)
    ft.check_head(model, labels)


def test_head_is_new_but_the_backbone_is_the_pretrained_one():
    from vitcourse.hub import load_pretrained

    pretrained = load_pretrained("google/vit-base-patch16-224", profile="smoke", verbose=False)
    model = ft.load_for_finetuning(list(COLORS), profile="smoke", verbose=False)
    assert ft.head_of(pretrained).out_features == 10  # the stand-in's Fashion-MNIST head ...
    assert pretrained.config.id2label[0] == "camiseta"  # ... named after the checkpoint's classes
    assert ft.head_of(model).out_features == 3  # ... is gone
    for (name, ours), (_, theirs) in zip(model.vit.named_parameters(), pretrained.vit.named_parameters()):
        assert torch.equal(ours, theirs), name


def test_new_head_is_seeded_whatever_the_global_generator():
    torch.manual_seed(123)
    first = ft.head_of(ft.load_for_finetuning(list(COLORS), profile="smoke", seed=5, verbose=False)).weight
    torch.manual_seed(456)
    second = ft.head_of(ft.load_for_finetuning(list(COLORS), profile="smoke", seed=5, verbose=False)).weight
    assert torch.equal(first, second)


def test_check_head_refuses_a_kept_pretrained_head():
    from vitcourse.hub import load_pretrained

    kept = load_pretrained("google/vit-base-patch16-224", profile="smoke", verbose=False)  # no labels=
    with pytest.raises(ValueError, match=r"10 outputs for 3 classes.*labels="):
        ft.check_head(kept, COLORS)
    model = ft.load_for_finetuning(list(COLORS), profile="smoke", verbose=False)
    model.config.id2label = {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    with pytest.raises(ValueError, match="id2label"):
        ft.check_head(model, COLORS)


@pytest.mark.parametrize("labels", [[], ["only"], ["a", "a"], [0, 1]])
def test_bad_labels_are_refused(labels):
    with pytest.raises(ValueError, match="at least two distinct class names"):
        ft.load_for_finetuning(labels, profile="smoke", verbose=False)


# -- freezing --------------------------------------------------------------------------------


def test_freeze_backbone_and_count_trainable_parameters():
    model = digits_model()
    trainable, total = ft.trainable_parameters(model)
    assert trainable == total
    ft.freeze_backbone(model)
    head = ft.head_of(model)
    assert ft.trainable_parameters(model) == (head.weight.numel() + head.bias.numel(), total)
    ft.freeze_backbone(model, train_last_blocks=1)
    block = sum(p.numel() for p in ft._blocks(model)[0][-1].parameters())
    norm = sum(p.numel() for p in model.vit.layernorm.parameters())
    assert ft.trainable_parameters(model)[0] == head.weight.numel() + head.bias.numel() + block + norm
    blocks = len(ft._blocks(model)[0])
    with pytest.raises(ValueError, match=f"has {blocks} blocks"):
        ft.freeze_backbone(model, train_last_blocks=blocks + 1)
    assert ft.trainable_parameters(ft.unfreeze(model)) == (total, total)


def test_a_frozen_backbone_does_not_move_but_the_head_does(digits, processor, tmp_path):
    model = ft.freeze_backbone(digits_model())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    data = digits["train"].with_transform(ft.processor_transform(processor))
    ft.finetune(model, data, output_dir=tmp_path, max_steps=3, batch_size=16, learning_rate=1e-2, warmup=0)
    for name, p in model.named_parameters():
        moved = not torch.equal(p, before[name])
        assert moved == name.startswith("classifier."), name


# -- fine-tuning and evaluation ---------------------------------------------------------------


def test_evaluate_classifier_matches_the_course_metrics(digits, processor):
    model = digits_model()
    data = digits["test"].with_transform(ft.processor_transform(processor))
    result = ft.evaluate_classifier(model, data, batch_size=48)
    assert result["num_samples"] == 200 and result["confusion"].shape == (10, 10)
    assert result["targets"].tolist() == digits["test"]["label"]
    recomputed = classification_metrics(result["predictions"], result["targets"], 10)
    for key in ("accuracy", "precision", "recall", "f1"):
        assert result[key] == pytest.approx(recomputed[key])
    assert torch.equal(result["confusion"], recomputed["confusion"])
    wide = ft.load_image_dataset("shape-colors", sizes={"train": 2, "validation": 2, "test": 20})
    narrow = ft.load_for_finetuning(["a", "b"], profile="smoke", verbose=False)
    with pytest.raises(ValueError, match="replace the head"):
        ft.evaluate_classifier(narrow, wide["test"].with_transform(ft.processor_transform(processor)))


def test_a_short_fine_tune_beats_the_untrained_head(digits, processor, tmp_path):
    data = digits.with_transform(ft.processor_transform(processor))
    model = digits_model()
    before = ft.evaluate_classifier(model, data["test"])
    result = ft.finetune(
        model, data["train"], data["validation"], output_dir=tmp_path, epochs=2, batch_size=32, learning_rate=2e-3
    )
    after = ft.evaluate_classifier(result.model, data["test"])
    assert before["accuracy"] < 0.3  # a random 10-way head: about chance
    assert after["accuracy"] > before["accuracy"] + 0.3, (before["accuracy"], after["accuracy"])
    assert not result.model.training and result.seconds > 0
    evals = [entry for entry in result.history if "eval_accuracy" in entry]
    assert [entry["epoch"] for entry in evals] == [1.0, 2.0]
    assert not list(tmp_path.glob("checkpoint-*"))  # nothing saved, nothing reported


def test_fine_tuning_is_deterministic(digits, processor, tmp_path):
    data = digits["train"].with_transform(ft.processor_transform(processor))
    weights = []
    for run in range(2):
        model = digits_model()
        ft.finetune(model, data, output_dir=tmp_path / str(run), max_steps=4, batch_size=16)
        weights.append(ft.head_of(model).weight.detach().clone())
    assert torch.equal(*weights)


def test_finetune_refuses_an_untransformed_dataset(digits, tmp_path):
    with pytest.raises(KeyError, match="processor_transform"):
        ft.finetune(digits_model(), digits["train"], output_dir=tmp_path, max_steps=1)


def fake_hub(columns, splits, num_classes=3):
    """A small DatasetDict laid out like a Hub data set (beans: image_file_path/image/labels; cifar10: img/label)."""
    from PIL import Image

    image_column, label_column = columns
    features = datasets.Features(
        {"path": datasets.Value("string"), image_column: datasets.Image(),
         label_column: datasets.ClassLabel(names=[f"c{i}" for i in range(num_classes)])}
    )  # fmt: skip
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {"path": ["x"] * size, image_column: [Image.new("RGB", (8, 8), (i, 0, 0)) for i in range(size)],
                 label_column: [i % num_classes for i in range(size)]},
                features=features,
            )  # fmt: skip
            for split, size in splits.items()
        }
    )


def test_hub_datasets_get_the_same_layout_as_ours(monkeypatch):
    import vitcourse.data

    beans = fake_hub(("image", "labels"), {"train": 30, "validation": 9, "test": 12})
    cifar = fake_hub(("img", "label"), {"train": 60, "test": 12})
    monkeypatch.setattr(vitcourse.data, "load_hub_dataset", lambda name, **_: {"beans": beans, "cifar10": cifar}[name])
    for name in ("beans", "cifar10"):
        data = ft.load_image_dataset(name, profile="full", sizes={"test": 5})
        assert list(data) == ["train", "validation", "test"], name
        for split in data.values():
            assert set(split.features) == {"image", "label"}
            assert split.features["label"].names == ["c0", "c1", "c2"]
        assert len(data["test"]) == 5
    assert [len(split) for split in data.values()] == [54, 6, 5]  # cifar10: 10 % of train for validation
    assert sorted(data["validation"]["label"]) == [0, 0, 1, 1, 2, 2]  # stratified


def test_make_splits_is_stratified_disjoint_and_leaves_test_alone(digits):
    pool = datasets.DatasetDict({"train": digits["train"], "test": digits["test"]})
    data = ft.make_splits(pool, validation_size=0.25, seed=0)
    assert list(data) == ["train", "validation", "test"]
    assert (len(data["train"]), len(data["validation"])) == (300, 100)
    assert data["test"]["label"] == digits["test"]["label"]
    counts = torch.bincount(torch.tensor(data["validation"]["label"]), minlength=10)
    expected = torch.bincount(torch.tensor(digits["train"]["label"]), minlength=10) * 0.25
    assert (counts - expected).abs().max() <= 1  # every class keeps its share
    again = ft.make_splits(pool, validation_size=0.25, seed=0)
    assert again["validation"]["label"] == data["validation"]["label"]


def test_replace_classifier_by_hand_matches_labels_and_keeps_the_backbone():
    from vitcourse.hub import load_pretrained

    model = load_pretrained("google/vit-base-patch16-224", profile="smoke", stand_in="random", verbose=False)
    backbone = {key: value.clone() for key, value in model.vit.state_dict().items()}
    assert ft.head_of(model).out_features == 1000  # the ImageNet classes of the original TP's bug
    ft.replace_classifier(model, COLORS)
    ft.check_head(model, COLORS)
    assert all(torch.equal(value, backbone[key]) for key, value in model.vit.state_dict().items())
    output = model(torch.randn(4, 3, 32, 32), labels=torch.tensor([0, 1, 2, 0]))
    assert output.logits.shape == (4, 3)
    assert torch.isclose(output.loss, torch.nn.functional.cross_entropy(output.logits, torch.tensor([0, 1, 2, 0])))
