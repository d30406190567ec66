"""``make data``: real images, the sizes asked for, 8 bits, labels of every class."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from src.data.make_dataset import make_dataset
from src.features.build_features import load_split, make_augment, make_loaders


def test_processed_splits(processed):
    folder = Path(processed["paths"]["processed"])
    for split in ("train", "val", "test"):
        stored = torch.load(folder / f"{split}.pt", weights_only=True)
        images, labels = stored["images"], stored["labels"]
        assert images.dtype == torch.uint8 and images.shape[1:] == (1, 28, 28)
        assert len(images) == processed["data"][f"{split}_size"] == len(labels)
        assert set(labels.tolist()) == set(range(10))  # stratified: every class present
        assert images.float().std() > 10  # real pictures, not a blank tensor
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["train"] == processed["data"]["train_size"]


def test_second_run_reuses_the_files(processed):
    folder = Path(processed["paths"]["processed"])
    before = (folder / "train.pt").stat().st_mtime_ns
    make_dataset(processed)
    assert (folder / "train.pt").stat().st_mtime_ns == before


def test_loaders_normalise(processed):
    _, val = make_loaders(processed)
    images, labels = next(iter(val))
    assert images.shape == (len(labels), 1, 28, 28) and images.dtype == torch.float32
    assert -1.0 < images.mean() < 1.0  # standardised with the data set's mean and std


def test_augmentation_moves_pixels_and_keeps_the_background(processed):
    images, labels = next(iter(make_loaders(processed)[1]))
    augment = make_augment(processed)
    moved, same_labels = augment(images, labels)
    assert moved.shape == images.shape and torch.equal(same_labels, labels)
    assert not torch.allclose(moved, images)
    corner = moved[:, :, 0, 0]  # the corners of these photos are background
    assert torch.allclose(
        corner, torch.full_like(corner, augment.background), atol=0.05
    )
    test = load_split(processed, "test")
    assert torch.equal(test[0][0], test[0][0])  # no randomness outside training
