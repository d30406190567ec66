"""Datasets and loaders: generated shapes, text lines, sklearn digits, augmentation, offline failures."""

import time

import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from vitcourse.data import (
    LEVELS,
    DataUnavailableError,
    DigitsDataset,
    ShapesClassification,
    ShapesDetection,
    TextLines,
    batch_mix,
    build_transform,
    detection_collate,
    load_cifar10,
    load_hub_dataset,
    remote,
    text_collate,
)
from vitcourse.data.shapes import SHAPE_NAMES


def test_classification_is_deterministic_balanced_and_split_apart():
    a = ShapesClassification("train", 40, seed=7, img_size=24)
    b = ShapesClassification("train", 40, seed=7, img_size=24)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.images.shape == (40, 3, 24, 24) and a.images.dtype == torch.uint8
    assert torch.bincount(a.labels).tolist() == [5] * 8
    image, label = a[3]
    assert image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1 and label == 3
    val = ShapesClassification("val", 40, seed=7, img_size=24)
    other_seed = ShapesClassification("train", 40, seed=8, img_size=24)
    assert not torch.equal(a.images, val.images) and not torch.equal(a.images, other_seed.images)
    assert a.classes == SHAPE_NAMES and a.classes_es[0] == "círculo" and len(a.captions) == 40


def test_normalize_standardises_the_images():
    data = ShapesClassification("val", 200, normalize=True)
    images = torch.stack([data[i][0] for i in range(len(data))])
    assert images.mean(dim=(0, 2, 3)).abs().max() < 0.1 and (images.std(dim=(0, 2, 3)) - 1).abs().max() < 0.1


def test_a_larger_dataset_extends_a_smaller_one():
    small, large = ShapesClassification("test", 10), ShapesClassification("test", 20)
    assert torch.equal(small.images, large.images[:10])


def test_classification_errors_are_clear():
    with pytest.raises(ValueError, match="split must be one of"):
        ShapesClassification("training", 4)
    from vitcourse.data import WorldConfig

    with pytest.raises(ValueError, match="one shape per image"):
        ShapesClassification("train", 4, config=WorldConfig(max_shapes=3))


def test_classification_loader_and_transform():
    data = ShapesClassification("val", 16, img_size=32, transform=build_transform("light", 32))
    images, labels = next(iter(DataLoader(data, batch_size=8)))
    assert images.shape == (8, 3, 32, 32) and labels.dtype == torch.int64


def test_detection_items_and_collate():
    data = ShapesDetection("train", 6, img_size=48, max_shapes=4)
    image, target = data[2]
    again = ShapesDetection("train", 6, img_size=48, max_shapes=4)[2][1]
    assert torch.equal(target["boxes"], again["boxes"]) and target["caption"] == again["caption"]
    K = len(target["labels"])
    assert image.shape == (3, 48, 48) and target["masks"].shape == (K, 48, 48) and target["boxes"].shape == (K, 4)
    images, targets = next(iter(DataLoader(data, batch_size=3, collate_fn=detection_collate)))
    assert images.shape == (3, 3, 48, 48) and len(targets) == 3 and targets[1]["image_id"] == 1
    with pytest.raises(IndexError):
        data[6]


def test_detection_transform_moves_boxes_and_masks_with_the_image():
    flip = v2.RandomHorizontalFlip(p=1.0)
    plain = ShapesDetection("val", 3, img_size=40)
    flipped = ShapesDetection("val", 3, img_size=40, transform=flip)
    (image, target), (image_f, target_f) = plain[0], flipped[0]
    assert torch.equal(image_f, image.flip(-1))
    assert torch.equal(target_f["masks"], target["masks"].flip(-1))
    x0, y0, x1, y1 = target["boxes"].unbind(-1)
    assert torch.equal(target_f["boxes"], torch.stack([40 - x1, y0, 40 - x0, y1], dim=-1))
    assert type(target_f["boxes"]) is torch.Tensor


def test_text_lines_dataset():
    data = TextLines("train", 5)
    images, texts = next(iter(DataLoader(data, batch_size=5, collate_fn=text_collate)))
    assert images.shape == (5, 3, 32, 128) and all(isinstance(t, str) and t for t in texts)
    assert texts[0] == data.sample(0).text


def test_digits_fixed_split_shapes_and_normalisation():
    train, val, test = (DigitsDataset(split) for split in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (1257, 180, 360)
    assert train.images.mean().abs() < 1e-5 and (train.images.std() - 1).abs() < 1e-3
    assert torch.bincount(test.labels).min() >= 35  # stratified
    big = DigitsDataset("test", img_size=32, channels=3, normalize=False)
    image, label = big[0]
    assert image.shape == (3, 32, 32) and 0 <= image.min() and image.max() <= 1 and 0 <= label <= 9
    assert torch.equal(DigitsDataset("test").labels, test.labels)
    with pytest.raises(ValueError, match="split must be one of"):
        DigitsDataset("validation")


@pytest.mark.parametrize("level", LEVELS)
def test_augmentation_presets_keep_shape_and_range(level):
    transform = build_transform(level, 24)
    torch.manual_seed(0)
    out = transform(torch.rand(3, 32, 32))
    assert out.shape == (3, 24, 24) and out.dtype == torch.float32
    if level != "heavy":  # random erasing writes noise
        assert 0 <= out.min() and out.max() <= 1


def test_eval_transform_is_deterministic_and_normalises():
    transform = build_transform("heavy", 16, train=False, mean=[0.5] * 3, std=[0.25] * 3)
    image = torch.rand(3, 20, 20)
    assert torch.equal(transform(image), transform(image))
    assert transform(torch.full((3, 16, 16), 0.5)).abs().max() < 0.01


def test_batch_mix_gives_soft_targets():
    assert batch_mix("light", 8) is None
    mix = batch_mix("heavy", 5)
    images, targets = mix(torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3]))
    assert images.shape == (4, 3, 16, 16) and targets.shape == (4, 5)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(4))
    with pytest.raises(ValueError, match="unknown augmentation level"):
        build_transform("extreme")


def test_reachable_fails_fast_on_a_closed_port():
    start = time.perf_counter()
    assert remote.reachable("127.0.0.1", port=9, timeout=1.0) is False
    assert time.perf_counter() - start < 2.0


def test_hub_dataset_offline_fails_fast_in_one_clear_line(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(DataUnavailableError) as error:
        load_hub_dataset("beans", split="train", cache_dir="/nonexistent-vitcourse-cache")
    assert time.perf_counter() - start < 15
    message = str(error.value)
    assert "\n" not in message and "beans" in message and "HF_HUB_OFFLINE" in message and "smoke" in message
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_hub_dataset_without_network_fails_before_trying(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(remote, "reachable", lambda host, port=443, timeout=3.0: False)
    with pytest.raises(DataUnavailableError, match="huggingface.co can't be reached"):
        load_hub_dataset("beans")


def test_cifar10_offline_fails_fast_and_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(remote, "reachable", lambda host, port=443, timeout=3.0: False)
    with pytest.raises(DataUnavailableError, match="CIFAR-10 is not in .* can't be reached"):
        load_cifar10("test", root=tmp_path)
    with pytest.raises(DataUnavailableError, match="download=False"):
        load_cifar10("test", root=tmp_path, download=False)


def test_augmentation_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vitcourse.viz import plot_augmentations, plot_mixed_batch

    data = ShapesClassification("val", 4, img_size=32)
    state = torch.random.get_rng_state()
    fig = plot_augmentations(data[0][0], samples=3)
    assert len(fig.axes) == 4 * 4 and torch.equal(torch.random.get_rng_state(), state)
    again = plot_augmentations(data[0][0], samples=3)
    assert (fig.axes[-1].images[0].get_array() == again.axes[-1].images[0].get_array()).all()  # seeded
    images = torch.stack([data[i][0] for i in range(4)])
    mixed = plot_mixed_batch(images, data.labels[:4], batch_mix("medium", 8), class_names=data.classes_es)
    assert len(mixed.axes) == 4 and "%" in mixed.axes[0].get_title()
    plt.close("all")


def test_classification_sample_is_the_same_drawing_with_its_mask():
    from vitcourse.data import ShapesClassification

    dataset = ShapesClassification("val", 12)
    for index in (0, 5, 11):
        sample = dataset.sample(index)
        assert torch.equal((sample.image * 255).round().to(torch.uint8), dataset.images[index])
        assert sample.labels.tolist() == [int(dataset.labels[index])]
        assert sample.masks.shape == (1, 32, 32) and sample.masks.any()
    with pytest.raises(IndexError, match="out of range"):
        dataset.sample(12)


def test_importing_the_data_does_not_import_torchvision():
    """Notebooks that only load data (TP1's sweep points, a kernel each) skip its seconds of import."""
    import subprocess
    import sys

    code = "import sys, vitcourse.data; print(sorted(m for m in sys.modules if m.startswith('torchvision')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
