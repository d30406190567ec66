"""Small training experiments, reproducible to the digit: train model X on the first N images with augmentation Z.

The book compares architectures, data sizes, augmentations and teachers. Each comparison
is a list of :class:`ExperimentSpec` (what to train) run by :func:`run_experiment` on the
same data, so that the specs differ only where the text says they differ::

    train, test = load_data("fashion_mnist")            # or "shapes", "cifar10"
    spec = ExperimentSpec("vit_micro_patch4_32", config=VIT_SHAPES, train_size=1000, augment="medium")
    result = run_experiment(spec, train, test)
    result.test_accuracy, result.cpu_seconds

Two budgets are possible: ``epochs`` (passes over the subset) or ``presentations`` (images
seen in total, the same compute for every subset size: a small subset is then seen for
more epochs). The subset is always the *first* ``train_size`` images, which in the
generated world and in the Fashion-MNIST pool (put in a fixed stratified order) are
balanced across classes and identical on every machine, and a larger subset extends a
smaller one.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from .data.augment import PRESETS, ShiftFlip, batch_mix, build_transform
from .data.mnist import MNIST, FashionMNIST, stratified_order
from .models import create_model
from .train import DistillationLoss, DistillationWrapper, History, evaluate, fit

__all__ = [
    "AUGMENTATIONS",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "ExperimentResult",
    "ExperimentSpec",
    "compare_accuracies",
    "compare_summaries",
    "first",
    "load_data",
    "results_frame",
    "run_experiment",
    "seed_summary",
    "seed_verdict",
    "train_transform",
]

CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)
"""Per-channel statistics of CIFAR-10's training images, for normalisation."""

AUGMENTATIONS: tuple[str, ...] = (*PRESETS, "shift_flip")
"""Per-image augmentations an :class:`ExperimentSpec` may ask for: the levels of
:mod:`vitcourse.data.augment` and, for 28×28 grey images, ``"shift_flip"`` (shifts of up to
2 pixels and left-right flips, :class:`~vitcourse.data.augment.ShiftFlip`: the cheap one)."""


def load_data(
    name: str = "shapes", train_size: int | None = 4000, test_size: int | None = 1000, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """The training pool and the test set of an experiment.

    Args:
        name: ``"fashion_mnist"``: :class:`~vitcourse.data.FashionMNIST`, the training
            split in a fixed stratified order (every prefix balanced, see
            :func:`~vitcourse.data.stratified_order` with ``seed``), kept in ``[0, 1]`` and
            normalised by the transform, and the official test set (its first
            ``test_size`` images; ``None``: all 10,000); ``"mnist"`` the same for
            :class:`~vitcourse.data.MNIST`; ``"shapes"``: the generated world exactly as the
            shipped ``vit_shapes`` and ``resnet_shapes`` checkpoints were trained on it (the
            same images, the first ``train_size`` of their training split; normalised);
            ``"cifar10"``: CIFAR-10 (needs the download, ``full`` profile), first
            ``train_size``/``test_size`` images.
        train_size: images in the training pool (subsets are taken with :func:`first`);
            ``None``: the whole training split (Fashion-MNIST and MNIST only).
        test_size: images in the test set.
        seed: base seed of the generated world, or of the stratified order.

    Returns:
        ``(train, test)`` datasets of ``(image, label)``; ``train`` is not augmented (pass
        a transform to :func:`first`); ``train.classes`` names the classes.
    """
    if name in ("fashion_mnist", "mnist"):
        cls = FashionMNIST if name == "fashion_mnist" else MNIST
        pool = cls("train", normalize=False, transform=_grey_transform(cls, "none"))
        order = torch.from_numpy(stratified_order(pool.labels.numpy(), seed=seed))
        pool.images, pool.labels = pool.images[order], pool.labels[order]  # every prefix balanced
        test = cls("test")
        pool = pool if train_size is None else first(pool, min(train_size, len(pool)))
        return pool, test if test_size is None else first(test, min(test_size, len(test)))
    if name == "shapes":
        from .checkpoints.build import RECIPES, make_datasets

        recipe = RECIPES["vit_shapes"]
        sizes = {"train_size": train_size, "val_size": 0, "test_size": test_size, "seed": seed}
        train, _, test = make_datasets(replace(recipe, data_config={**recipe.data_config, **sizes}, augment="none"))
        return train, test
    if name == "cifar10":
        from .data.remote import load_cifar10

        evaluation = build_transform("none", 32, train=False, mean=CIFAR10_MEAN, std=CIFAR10_STD)
        train = load_cifar10("train", transform=evaluation)
        test = load_cifar10("test", transform=evaluation)
        return first(train, min(train_size, len(train))), first(test, min(test_size, len(test)))
    raise ValueError(
        f'unknown data {name!r}: use "fashion_mnist" or "mnist" (real, offline), "shapes" (offline, generated) '
        'or "cifar10" (download)'
    )


def _grey_transform(cls: type, level: str) -> Callable:
    """Augment a ``[0, 1]`` 28×28 grey image with ``level``, then normalise it as ``cls`` does."""
    from torchvision.transforms import v2

    normalize = v2.Normalize(mean=[cls.mean], std=[cls.std])
    if level == "none":
        return normalize
    if level == "shift_flip":
        return v2.Compose([normalize, ShiftFlip(max_shift=2, flip=True, fill=-cls.mean / cls.std)])
    return build_transform(level, 28, mean=(cls.mean,), std=(cls.std,))


def _base(dataset: Dataset) -> Dataset:
    """The dataset under any :class:`~torch.utils.data.Subset` wrappers (it holds the transform)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def train_transform(dataset: Dataset, level: str) -> Callable | None:
    """The per-image augmentation of ``level`` for a dataset from :func:`load_data`.

    The generated world normalises *after* its transform, so its transform stays in
    ``[0, 1]``; CIFAR-10's transform converts and normalises itself.

    Returns:
        A transform, or ``None`` for the generated world without augmentation.
    """
    base = _base(dataset)
    if isinstance(base, (FashionMNIST, MNIST)):  # kept in [0, 1]; the transform normalises
        return _grey_transform(type(base), level)
    if level == "shift_flip":
        raise ValueError('augment="shift_flip" is for the 28×28 grey data sets ("fashion_mnist", "mnist")')
    size = _image_size(base)
    if hasattr(base, "normalize"):  # ShapesClassification: it normalises after the transform
        return None if level == "none" else build_transform(level, size)
    return build_transform(level, size, mean=CIFAR10_MEAN, std=CIFAR10_STD)


def _image_size(dataset: Dataset) -> int:
    config = getattr(dataset, "config", None)
    if config is not None and hasattr(config, "img_size"):
        return int(config.img_size[0])
    return 32


def first(dataset: Dataset, size: int, transform: Callable | None | str = "keep") -> Subset:
    """The first ``size`` items of ``dataset``, optionally with another per-image transform.

    Args:
        dataset: a map-style dataset with a ``transform`` attribute (or a ``Subset`` of one).
        size: how many items, from index 0.
        transform: the transform of the subset's items; ``"keep"`` keeps the dataset's.
            The dataset itself is not changed (a shallow copy gets the new transform).

    Returns:
        A :class:`~torch.utils.data.Subset`.
    """
    if not 0 < size <= len(dataset):
        raise ValueError(f"size must be in [1, {len(dataset)}] for a dataset of {len(dataset)} items, got {size}")
    indices = list(range(size))
    while isinstance(dataset, Subset):  # compose indices down to the base dataset
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    if transform != "keep":
        if not hasattr(dataset, "transform"):
            raise TypeError(f"{type(dataset).__name__} has no transform attribute to replace")
        dataset = copy.copy(dataset)  # shares the images, not the transform
        dataset.transform = transform
    return Subset(dataset, indices)


@dataclass(frozen=True)
class ExperimentSpec:
    """What one training run is: model, data subset, augmentation, budget and, optionally, a teacher.

    Args:
        model: a name from :func:`vitcourse.models.list_models`.
        config: overrides of the model's config (``num_classes``, ``dropout``, ``drop_path`` ...).
        train_size: use the first ``train_size`` training images.
        augment: per-image augmentation level (``"none"``, ``"light"``, ``"medium"``, ``"heavy"``);
            its MixUp/CutMix is applied to the batches too when ``mix`` is True.
        mix: apply the level's batch mixing (MixUp/CutMix), if it has any.
        epochs: passes over the subset; or
        presentations: images seen in total (``epochs = ceil(presentations / train_size)``).
        batch_size, lr, weight_decay, warmup, label_smoothing: as in :func:`~vitcourse.train.fit`.
        distill: ``None``, ``"hard"`` or ``"soft"``: train with a teacher (:func:`run_experiment`'s
            ``teacher``) through :class:`~vitcourse.train.DistillationLoss`.
        alpha, tau: weight and temperature of the distillation loss.
        seed: initialisation, data order, dropout and augmentation.
        label: a short name for tables and figures.
    """

    model: str
    config: dict[str, Any] = field(default_factory=dict)
    train_size: int = 1000
    augment: str = "none"
    mix: bool = True
    epochs: int | None = None
    presentations: int | None = None
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: float = 1.0
    label_smoothing: float = 0.0
    distill: str | None = None
    alpha: float = 0.5
    tau: float = 3.0
    seed: int = 0
    label: str = ""

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.presentations is None):
            raise ValueError(
                f"give exactly one budget: epochs or presentations (got epochs={self.epochs}, "
                f"presentations={self.presentations})"
            )
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        if self.distill not in (None, "hard", "soft"):
            raise ValueError(f'distill must be None, "hard" or "soft", got {self.distill!r}')
        if self.train_size < 1:
            raise ValueError(f"train_size must be positive, got {self.train_size}")

    @property
    def num_epochs(self) -> int:
        """Epochs the budget amounts to."""
        if self.epochs is not None:
            return self.epochs
        return max(1, math.ceil(self.presentations / self.train_size))

    def with_(self, **changes: Any) -> ExperimentSpec:
        """A copy with some fields changed (``config`` entries are merged, not replaced)."""
        if "config" in changes:
            changes["config"] = {**self.config, **changes["config"]}
        if "epochs" in changes and "presentations" not in changes:
            changes["presentations"] = None
        if "presentations" in changes and "epochs" not in changes:
            changes["epochs"] = None
        return replace(self, **changes)


@dataclass
class ExperimentResult:
    """The outcome of :func:`run_experiment`.

    Attributes:
        spec: what was trained.
        model: the trained model, in eval mode (for DeiT, the student, not the wrapper).
        history: per-epoch numbers from :func:`~vitcourse.train.fit`.
        test_accuracy: accuracy on the test set; ``test_loss`` its cross-entropy.
        train_accuracy: accuracy on the (un-augmented) training subset after training.
        seconds: wall-clock time of the training; ``cpu_seconds`` the CPU time of this process.
    """

    spec: ExperimentSpec
    model: nn.Module
    history: History
    test_accuracy: float
    test_loss: float
    train_accuracy: float
    seconds: float
    cpu_seconds: float

    def row(self) -> dict[str, Any]:
        """One flat row for a table: the spec's main fields and the numbers."""
        spec = self.spec
        return {
            "label": spec.label or spec.model,
            "model": spec.model,
            "train_size": spec.train_size,
            "augment": spec.augment,
            "distill": spec.distill or "",
            "epochs": spec.num_epochs,
            "seed": spec.seed,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
        }


def run_experiment(
    spec: ExperimentSpec,
    train: Dataset,
    test: Dataset,
    teacher: nn.Module | None = None,
    device: str | torch.device = "cpu",
    curve: Dataset | None = None,
) -> ExperimentResult:
    """Train ``spec`` on the first ``spec.train_size`` images of ``train`` and test it.

    Args:
        spec: the run.
        train: training pool from :func:`load_data` (not augmented; the spec's level is applied here).
        test: test set.
        teacher: required when ``spec.distill`` is set: a classifier of the same classes
            (wrap it in :class:`~vitcourse.train.CachedTeacher` to compute each image once).
        device: where to train.
        curve: optional images evaluated after every epoch, for a learning curve
            (``result.history["val_accuracy"]``); they never choose the weights (the
            model keeps its last epoch's).

    Returns:
        An :class:`ExperimentResult`.
    """
    if spec.distill and teacher is None:
        raise ValueError(f"spec {spec.label or spec.model!r} distills (distill={spec.distill!r}) but no teacher was given")
    if spec.train_size > len(train):
        raise ValueError(
            f"spec {spec.label or spec.model!r} wants {spec.train_size} training images but the pool has {len(train)}; "
            "load more with load_data(train_size=...)"
        )
    torch.manual_seed(spec.seed)
    model = create_model(spec.model, **spec.config)
    num_classes = _num_classes(model)
    subset = first(train, spec.train_size, train_transform(train, spec.augment))
    generator = torch.Generator().manual_seed(spec.seed)
    batch_size = min(spec.batch_size, spec.train_size)
    loader = DataLoader(subset, batch_size, shuffle=True, drop_last=True, generator=generator)
    mix = batch_mix(spec.augment, num_classes) if spec.mix and spec.augment in PRESETS else None
    trained, loss_fn = model, None
    if spec.distill:
        trained = DistillationWrapper(model)
        loss_fn = DistillationLoss(teacher.to(device), kind=spec.distill, alpha=spec.alpha, tau=spec.tau)
    start, cpu_start = time.perf_counter(), time.process_time()
    history = fit(
        trained,
        loader,
        DataLoader(curve, 500) if curve is not None else None,
        restore_best=False,
        monitor="val_accuracy",
        epochs=spec.num_epochs,
        lr=spec.lr,
        weight_decay=spec.weight_decay,
        warmup=spec.warmup,
        label_smoothing=spec.label_smoothing,
        loss_fn=loss_fn,
        batch_transform=mix,
        seed=spec.seed,
        device=device,
        quiet=True,
    )
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    model.eval()
    tested = evaluate(model, DataLoader(test, 500), device)
    fitted = evaluate(model, DataLoader(first(train, spec.train_size), 500), device)
    return ExperimentResult(
        spec=spec,
        model=model,
        history=history,
        test_accuracy=tested["accuracy"],
        test_loss=tested["loss"],
        train_accuracy=fitted["accuracy"],
        seconds=seconds,
        cpu_seconds=cpu_seconds,
    )


def _num_classes(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "num_classes", 0):
        return int(config.num_classes)
    raise ValueError(f"cannot tell the number of classes of {type(model).__name__}; set num_classes in its config")


def results_frame(results: Sequence[ExperimentResult]):
    """The results as a ``pandas.DataFrame``, one row each (see :meth:`ExperimentResult.row`)."""
    import pandas as pd

    return pd.DataFrame([result.row() for result in results])


def compare_accuracies(
    accuracy_a: float, accuracy_b: float | Sequence[float], num_samples: int, z: float = 2.0
) -> dict[str, float]:
    """Is ``a`` better than ``b`` on a test set of ``num_samples`` images, beyond chance?

    Each accuracy is a proportion with binomial standard error ``√(p(1-p)/n)``; a
    difference has standard error ``√(se_a² + se_b²)`` (conservative when both models
    are tested on the same images, which makes their errors correlated). That is the
    noise of the *test set*. Training has its own: another seed gives another model.
    Pass several accuracies of the baseline (one per seed) as ``accuracy_b``; ``a`` then
    counts as better (worse) only if it is clearly above (below) **every** one of them.

    Args:
        accuracy_a: accuracy in ``[0, 1]``.
        accuracy_b: the baseline's accuracy, or one per training seed.
        num_samples: test images behind each accuracy.
        z: how many standard errors count as a clear difference (2 ≈ 95 %).

    Returns:
        ``{"difference": a - mean(b), "stderr": of that difference, "sign": +1 (a better),
        -1 (b better) or 0 (can't tell)}``.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    references = [accuracy_b] if isinstance(accuracy_b, (int, float)) else list(accuracy_b)
    if not references:
        raise ValueError("accuracy_b is empty: give the baseline's accuracy (or one per seed)")

    def stderr(p: float, q: float) -> float:
        return math.sqrt((p * (1 - p) + q * (1 - q)) / num_samples)

    above = all(accuracy_a - b > z * stderr(accuracy_a, b) for b in references)
    below = all(b - accuracy_a > z * stderr(accuracy_a, b) for b in references)
    mean_b = sum(references) / len(references)
    return {
        "difference": accuracy_a - mean_b,
        "stderr": stderr(accuracy_a, mean_b),
        "sign": 1 if above else -1 if below else 0,
    }


def seed_summary(values: Sequence[float]) -> dict[str, float]:
    """Mean, spread and range of one result over training seeds.

    Args:
        values: one accuracy (or any number) per seed; at least one.

    Returns:
        ``{"mean", "std" (sample standard deviation; 0 for one seed), "min", "max", "n"}``.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("seed_summary needs at least one value")
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "min": min(values), "max": max(values), "n": len(values)}


def compare_summaries(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    """Is ``a`` better than ``b`` by more than their spread across seeds (mean ± std)?

    The rule for results kept as a mean and a standard deviation over seeds (a
    :func:`seed_summary`, or the summary a results file stores): the difference of the
    means counts only when it exceeds the sum of the two standard deviations. (With
    every seed's number at hand, :func:`seed_verdict` asks instead that the seeds'
    ranges don't overlap.)

    Args:
        a, b: ``{"mean", "std", ...}`` of each result (higher is better).

    Returns:
        ``{"difference": mean_a - mean_b, "spread": std_a + std_b, "sign": +1 (a better),
        -1 (b better) or 0 (the difference is not larger than the spread)}``.
    """
    missing = [f"{name}[{key!r}]" for name, summary in (("a", a), ("b", b)) for key in ("mean", "std")
               if key not in summary]  # fmt: skip
    if missing:
        raise ValueError(f"compare_summaries needs mean and std of each side (seed_summary gives them); "
                         f"missing {', '.join(missing)}")  # fmt: skip
    difference = float(a["mean"]) - float(b["mean"])
    spread = float(a["std"]) + float(b["std"])
    sign = 0 if abs(difference) <= spread else 1 if difference > 0 else -1
    return {"difference": difference, "spread": spread, "sign": sign}


def seed_verdict(values_a: Sequence[float], values_b: Sequence[float], min_seeds: int = 3) -> int:
    """Is ``a`` better than ``b`` beyond the spread across seeds?

    The rule the book uses for every comparative claim: ``a`` is better (``+1``) only when
    **every** seed of ``a`` beats **every** seed of ``b`` (their ranges don't overlap), worse
    (``-1``) when every seed of ``a`` is below every seed of ``b``, and ``0`` (can't tell)
    otherwise, or with fewer than ``min_seeds`` seeds on either side.

    Args:
        values_a, values_b: one number per training seed (higher is better).
        min_seeds: seeds each side needs before anything is claimed.

    Returns:
        ``+1``, ``-1`` or ``0``.
    """
    a, b = [float(v) for v in values_a], [float(v) for v in values_b]
    if len(a) < min_seeds or len(b) < min_seeds:
        return 0
    if min(a) > max(b):
        return 1
    if max(a) < min(b):
        return -1
    return 0
