"""Fine-tuning a pretrained ViT with Hugging Face ``datasets`` and ``Trainer``, done right.

The recipe of Chapter 3 and TP3, one function per step::

    data = load_image_dataset("mnist")                        # DatasetDict: train / validation / test
    model = load_for_finetuning(data["train"].features["label"].names)   # a NEW head, C outputs
    processor = load_processor("google/vit-base-patch16-224", model=model)
    data = data.with_transform(processor_transform(processor))
    before = evaluate_classifier(model, data["test"])         # the new head is random: chance level
    result = finetune(model, data["train"], data["validation"], output_dir="runs/tp3")
    after = evaluate_classifier(result.model, data["test"])

* :func:`load_image_dataset`: a ``datasets.DatasetDict`` with an ``image`` column
  (``datasets.Image``) and a ``label`` column (``datasets.ClassLabel`` with the class
  names), split into ``train``/``validation``/``test``. Offline: Fashion-MNIST and MNIST
  (real 28×28 images), the generated world, sklearn's digits, crops of the bundled photos;
  any ``imagefolder`` (a folder with one sub-folder per class); in the ``full`` profile also
  any Hub data set with image and label columns, e.g. ``beans`` and
  ``cifar10`` from the Hub (offline they fail in one line, see :mod:`vitcourse.data.remote`).
* :func:`processor_transform` and :func:`collate`: images → ``pixel_values`` with the
  model's image processor, on the fly (``Dataset.with_transform``).
* :func:`load_for_finetuning`: the pretrained model with its head **replaced** by one of
  ``len(labels)`` outputs and the right ``id2label``/``label2id``. Keeping the Hub's
  1000-class ImageNet head (the original TP3's bug) is what :func:`check_head` refuses.
* :func:`freeze_backbone` (linear probe, or the last blocks too), :func:`unfreeze`,
  :func:`trainable_parameters`.
* :func:`finetune`: ``transformers.Trainer`` on CPU or GPU, seeded, reporting nowhere.
* :func:`evaluate_classifier`: accuracy, macro precision/recall/F1 and the confusion
  matrix of :mod:`vitcourse.train.metrics`, with the predictions they come from.

``datasets`` and ``transformers`` are imported only by the functions that need them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .runtime import resolve_profile

__all__ = [
    "HUB_DATASETS",
    "LOCAL_DATASETS",
    "FinetuneResult",
    "check_head",
    "collate",
    "evaluate_classifier",
    "finetune",
    "freeze_backbone",
    "head_of",
    "load_for_finetuning",
    "load_image_dataset",
    "make_splits",
    "processor_transform",
    "replace_classifier",
    "to_pil",
    "trainable_parameters",
    "unfreeze",
]

DEFAULT_MODEL = "google/vit-base-patch16-224"

#: Offline data sets: name → what it is.
LOCAL_DATASETS: dict[str, str] = {
    "fashion_mnist": "Fashion-MNIST: 28x28 grey photos of clothes (10 classes, real data; the smoke stand-in's task)",
    "mnist": "MNIST: 28x28 handwritten digits (10 classes, real data; a new task for the stand-in)",
    "shapes": "generated world: which shape (8 classes)",
    "shape-colors": "generated world: which colour the shape is painted (10 classes, a new task)",
    "digits": "scikit-learn's handwritten digits, 8x8 grey (10 classes, real data)",
    "photos": "random crops of photos bundled with scikit-image/scikit-learn/matplotlib: which photo (6 classes)",
}

#: Hub data sets of the ``full`` profile: name → (image column, label column, validation split or None).
HUB_DATASETS: dict[str, tuple[str, str, str | None]] = {
    "beans": ("image", "labels", "validation"),
    "cifar10": ("img", "label", None),  # no validation split on the Hub: carved out of train
}

#: Images per split of the offline sets (digits has its fixed split instead).
DEFAULT_SIZES: dict[str, int] = {"train": 1000, "validation": 200, "test": 400}

PHOTO_CLASSES: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "china", "flower")


# -- data sets ---------------------------------------------------------------------------


def to_pil(image: torch.Tensor):
    """A ``(C, H, W)`` float image in ``[0, 1]`` (C = 1 or 3) as a PIL image (``"L"`` or ``"RGB"``)."""
    from PIL import Image

    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected a (C, H, W) image with C = 1 or 3, got shape {tuple(image.shape)}")
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (H, W, C)
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def _as_dataset(images: Sequence[torch.Tensor], labels: Sequence[int], names: Sequence[str]):
    """A ``datasets.Dataset`` with columns ``image`` (Image) and ``label`` (ClassLabel of ``names``)."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(names))})
    return datasets.Dataset.from_dict(
        {"image": [to_pil(image) for image in images], "label": [int(label) for label in labels]}, features=features
    )


def _shapes_split(split: str, size: int, seed: int, img_size: int, task: str):
    from .data import generate
    from .data.datasets import CLASSIFICATION_WORLD, SPLITS

    config = dataclasses.replace(CLASSIFICATION_WORLD, img_size=img_size or 32)
    split_id = SPLITS["val" if split == "validation" else split]
    # A different seed stream from vitcourse.data.ShapesClassification (base seed + 1000),
    # so that no fine-tuning image is one the stand-in saw in training.
    samples = [
        generate((seed + 1000, split_id, index), config, label=index % config.num_classes) for index in range(size)
    ]
    if task == "shape":
        names = list(config.shapes)
        labels = [int(sample.labels[0]) for sample in samples]
    else:
        names = list(config.colors)
        labels = [names.index(sample.shapes[0].color) for sample in samples]
    return [sample.image for sample in samples], labels, names


def _grey28_split(name: str, split: str, size: int | None, seed: int):
    """A stratified ``size`` of a FashionMNIST/MNIST split (``seed`` picks it), in ``[0, 1]``."""
    from .data import MNIST, FashionMNIST

    cls = FashionMNIST if name == "fashion_mnist" else MNIST
    data = cls("val" if split == "validation" else split, normalize=False)
    if size is not None and size < len(data):
        data = cls("val" if split == "validation" else split, size=size, seed=seed, normalize=False)
    return list(data.images), data.labels.tolist(), list(data.classes)


def _digits_split(split: str, size: int | None, img_size: int | None):
    from .data import DigitsDataset

    data = DigitsDataset("val" if split == "validation" else split, img_size=img_size or 8, normalize=False)
    size = size or len(data)  # the first ``size`` of a fixed split (sorted by index, so all classes come early)
    return list(data.images[:size]), data.labels[:size].tolist(), list(data.classes)


def _photos_split(split: str, size: int, seed: int, img_size: int | None):
    from .data import load_photo

    img_size = img_size or 32
    photos = [load_photo(name, size=4 * img_size) for name in PHOTO_CLASSES]  # (3, 4s, 4s) each
    rng = np.random.default_rng([seed, {"train": 0, "validation": 1, "test": 2}[split]])
    images, labels = [], []
    for index in range(size):
        label = index % len(PHOTO_CLASSES)
        photo = photos[label]
        crop = int(rng.integers(img_size, 2 * img_size + 1))  # a crop of 1/4 to 1/2 of the photo's side
        y, x = (int(rng.integers(0, side - crop + 1)) for side in photo.shape[1:])
        patch = photo[:, y : y + crop, x : x + crop]
        patch = F.interpolate(patch[None], size=(img_size, img_size), mode="bilinear", antialias=True)[0]
        images.append(patch.flip(-1) if rng.random() < 0.5 else patch)
        labels.append(label)
    return images, labels, list(PHOTO_CLASSES)


def make_splits(data, validation_size: float = 0.1, seed: int = 0):
    """Carve a stratified validation split out of ``train``; ``test`` is left untouched.

    Args:
        data: a ``DatasetDict`` with ``train`` and ``test`` (a ``ClassLabel`` column ``label``).
        validation_size: fraction of ``train`` that goes to validation.
        seed: seed of the split (the same seed, the same split).

    Returns:
        A ``DatasetDict`` with ``train``, ``validation`` and ``test``; every class keeps
        its share of images in ``train`` and ``validation``.
    """
    import datasets

    parts = data["train"].train_test_split(test_size=validation_size, stratify_by_column="label", seed=seed)
    return datasets.DatasetDict({"train": parts["train"], "validation": parts["test"], "test": data["test"]})


def _find_columns(features, image_column: str | None, label_column: str | None) -> tuple[str, str]:
    """The image column (a ``datasets.Image`` feature) and the label column (a ``ClassLabel``,
    or else an integer or string column) of a data set, unless given."""
    import datasets

    names = list(features)
    image = image_column or next((n for n in names if isinstance(features[n], datasets.Image)), None)
    label = label_column or next((n for n in names if isinstance(features[n], datasets.ClassLabel)), None)
    label = label or next((n for n in ("label", "labels", "fine_label", "class") if n in names), None)
    if image is None or label is None or image not in names or label not in names:
        raise ValueError(
            f"could not tell the image and label columns among {names} (image: {image!r}, label: {label!r}); "
            "pass image_column= and label_column="
        )
    return image, label


def _standard_splits(data, seed: int, sizes: dict[str, int] | None, image_column=None, label_column=None):
    """Any ``DatasetDict`` of images with labels → ``train``/``validation``/``test`` with the
    columns ``image`` and ``label`` (a ``ClassLabel``); missing splits are carved out of
    ``train``, stratified and seeded (20 % test, then 10 % of the rest for validation)."""
    import datasets

    image, label = _find_columns(data[next(iter(data))].features, image_column, label_column)
    data = datasets.DatasetDict({split: part.select_columns([image, label]) for split, part in data.items()})
    data = data.rename_columns({c: n for c, n in ((image, "image"), (label, "label")) if c != n})
    if not isinstance(data[next(iter(data))].features["label"], datasets.ClassLabel):
        data = data.class_encode_column("label")
    validation = next((s for s in ("validation", "valid", "val") if s in data), None)
    if "train" not in data:
        raise ValueError(f"the data set has no 'train' split, only {sorted(data)}")
    if "test" not in data:
        parts = data["train"].train_test_split(test_size=0.2, stratify_by_column="label", seed=seed)
        data = datasets.DatasetDict({**data, "train": parts["train"], "test": parts["test"]})
    if validation is None:  # stratified, seeded: the same split on every run
        data = make_splits(data, validation_size=0.1, seed=seed)
    else:
        data = datasets.DatasetDict({"train": data["train"], "validation": data[validation], "test": data["test"]})
    if sizes:
        data = datasets.DatasetDict(
            {split: part.shuffle(seed=seed).select(range(min(sizes.get(split, len(part)), len(part))))
             for split, part in data.items()}
        )  # fmt: skip
    return data


def _hub_dataset(name: str, seed: int, sizes: dict[str, int] | None, image_column=None, label_column=None):
    from .data import load_hub_dataset

    known = HUB_DATASETS.get(name)
    if known is not None:
        image_column, label_column = image_column or known[0], label_column or known[1]
    return _standard_splits(load_hub_dataset(name), seed, sizes, image_column, label_column)


def load_image_dataset(
    name: str,
    *,
    profile: str = "auto",
    sizes: dict[str, int] | None = None,
    img_size: int | None = None,
    seed: int = 0,
    image_column: str | None = None,
    label_column: str | None = None,
):
    """An image classification data set as a ``datasets.DatasetDict``: ``train``, ``validation``, ``test``.

    Args:
        name: one of :data:`LOCAL_DATASETS` (offline, any profile); a folder in the
            ``imagefolder`` layout (one sub-folder per class, optionally inside
            ``train/``, ``validation/``, ``test/``; offline, any profile); or any Hub image
            classification data set (``full`` profile, downloaded), such as those of
            :data:`HUB_DATASETS`. Missing validation and test splits are carved out of
            ``train``, stratified and seeded.
        profile: ``"auto"``, ``"smoke"`` or ``"full"``; ``smoke`` never downloads.
        sizes: images per split, e.g. ``{"train": 500}`` (default :data:`DEFAULT_SIZES`
            for generated sets and for Fashion-MNIST and MNIST, where a size is a
            stratified subset chosen with ``seed``; everything for digits and Hub sets; a
            Hub set is shuffled with ``seed`` before it is cut).
        img_size: side of the generated images (default: 32; digits keep their 8×8).
        seed: seed of the generated images and of the carved splits.
        image_column, label_column: the columns holding the image and the label (default:
            the ``datasets.Image`` column and the ``ClassLabel`` column).

    Returns:
        A ``DatasetDict`` whose splits have the features ``image`` (``datasets.Image``, PIL
        images) and ``label`` (``datasets.ClassLabel``: ``features["label"].names`` are
        the class names in label order).

    Raises:
        ValueError: a bad ``sizes``, or columns that can't be told apart.
        vitcourse.data.DataUnavailableError: a Hub set in the ``smoke`` profile, or offline and not cached.
    """
    import datasets

    from .data import DataUnavailableError

    bad = {
        split: n for split, n in (sizes or {}).items() if split not in DEFAULT_SIZES or not isinstance(n, int) or n < 1
    }
    if bad:
        raise ValueError(f"sizes must map train/validation/test to positive ints, got {bad}")
    if name not in LOCAL_DATASETS and Path(name).is_dir():
        folder = datasets.load_dataset("imagefolder", data_dir=str(name))
        return _standard_splits(folder, seed, sizes, image_column, label_column)
    if name not in LOCAL_DATASETS:
        if resolve_profile(profile) == "smoke":
            raise DataUnavailableError(
                f"data set {name!r} is neither one of {sorted(LOCAL_DATASETS)} nor a local folder, so it would come "
                "from the Hub, and PROFILE='smoke' downloads nothing; use PROFILE='full' where the network is "
                "available, or an imagefolder path"
            )
        return _hub_dataset(name, seed, sizes, image_column, label_column)

    splits = {}
    for split in DEFAULT_SIZES:
        size = (sizes or {}).get(split, DEFAULT_SIZES[split])
        if name in ("shapes", "shape-colors"):
            parts = _shapes_split(split, size, seed, img_size, "shape" if name == "shapes" else "color")
        elif name in ("fashion_mnist", "mnist"):
            parts = _grey28_split(name, split, size, seed)
        elif name == "digits":
            parts = _digits_split(split, (sizes or {}).get(split), img_size)
        else:
            parts = _photos_split(split, size, seed, img_size)
        splits[split] = _as_dataset(*parts)
    return datasets.DatasetDict(splits)


# -- pre-processing ------------------------------------------------------------------------


def processor_transform(processor: Any) -> Callable[[dict], dict]:
    """A batch transform for ``Dataset.with_transform``: PIL images → the model's ``pixel_values``.

    Args:
        processor: a transformers image processor (resize, rescale, normalise), e.g.
            :func:`vitcourse.hub.load_processor`'s.

    Returns:
        ``transform(batch)`` mapping ``{"image": [PIL, ...], "label": [int, ...]}`` to
        ``{"pixel_values": (B, 3, H, W) float32, "labels": [int, ...]}``. Grey images are
        converted to RGB first (a ViT pretrained on ImageNet takes three channels).
    """

    def transform(batch: dict) -> dict:
        if "image" not in batch or "label" not in batch:
            raise KeyError(f"expected columns 'image' and 'label' (see load_image_dataset), got {sorted(batch)}")
        images = [image.convert("RGB") for image in batch["image"]]
        pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]  # (B, 3, H, W)
        return {"pixel_values": pixel_values, "labels": list(batch["label"])}

    return transform


def collate(examples: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Stack transformed examples into a batch: ``{"pixel_values": (B, 3, H, W), "labels": (B,)}``."""
    if not examples or "pixel_values" not in examples[0]:
        keys = sorted(examples[0]) if examples else []
        raise KeyError(
            f"collate expects examples with 'pixel_values' and 'labels', got keys {keys}; apply "
            "dataset.with_transform(processor_transform(processor)) first"
        )
    return {
        "pixel_values": torch.stack([torch.as_tensor(example["pixel_values"]) for example in examples]),
        "labels": torch.tensor([int(example["labels"]) for example in examples]),
    }


# -- the model ----------------------------------------------------------------------------


def head_of(model: nn.Module) -> nn.Linear:
    """The classification head: ``model.classifier`` (Hugging Face) or ``model.head`` (timm, vitcourse)."""
    for attribute in ("classifier", "head"):
        head = getattr(model, attribute, None)
        if isinstance(head, nn.Linear):
            return head
    raise TypeError(
        f"{type(model).__name__} has no linear head at .classifier (Hugging Face) or .head (timm, vitcourse)"
    )


def check_head(model: nn.Module, labels: Sequence[str]) -> None:
    """Raise unless the model classifies into exactly ``labels``.

    Checked: the head's width, and where the model has a config, ``num_labels``,
    ``id2label`` and ``label2id``.

    Raises:
        ValueError: saying what differs, e.g. the 1000-class ImageNet head kept.
    """
    labels = list(labels)
    problems = []
    out_features = head_of(model).out_features
    if out_features != len(labels):
        problems.append(
            f"the head has {out_features} outputs for {len(labels)} classes"
        )
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "id2label"):
        if config.num_labels != len(labels):
            problems.append(
                f"config.num_labels is {config.num_labels}, not {len(labels)}"
            )
        id2label = {int(i): name for i, name in config.id2label.items()}
        if id2label != dict(enumerate(labels)):
            shown = dict(list(id2label.items())[:4])
            more = " ..." if len(id2label) > 4 else ""
            problems.append(
                f"config.id2label is {shown}{more}, not {dict(enumerate(labels))}"
            )
        if dict(config.label2id) != {name: i for i, name in enumerate(labels)}:
            problems.append("config.label2id is not the inverse of id2label")
    if problems:
        raise ValueError(
            "the classification head does not match the data set's classes: "
            + "; ".join(problems)
            + ". Load the model with labels=... (load_for_finetuning) so that the "
            "pretrained head is replaced"
        )


def replace_classifier(model: nn.Module, labels: Sequence[str]) -> nn.Module:
    """Replace a Hugging Face classifier's head by a new one for ``labels``, by hand.

    What ``from_pretrained(..., num_labels=..., id2label=..., label2id=...,
    ignore_mismatched_sizes=True)`` does: a new ``nn.Linear(hidden_size, C)``, drawn as
    the model draws its weights (truncated normal, ``config.initializer_range``; bias 0),
    and a config that agrees with it. The config matters: the loss reshapes the logits
    with ``config.num_labels``, and ``id2label`` names the predictions.

    Args:
        model: a transformers ``*ForImageClassification`` model (changed in place).
        labels: the new class names, in label order.

    Returns:
        ``model``, with ``model.classifier`` ``(C, hidden_size)`` and ``config.num_labels = C``.
    """
    labels = list(labels)
    old = head_of(model)
    new = nn.Linear(old.in_features, len(labels)).to(device=old.weight.device, dtype=old.weight.dtype)
    nn.init.trunc_normal_(new.weight, std=getattr(model.config, "initializer_range", 0.02))
    nn.init.zeros_(new.bias)
    model.classifier = new
    model.num_labels = len(labels)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    model.config.num_labels = len(labels)
    return model


def load_for_finetuning(
    labels: Sequence[str],
    name: str = DEFAULT_MODEL,
    *,
    profile: str = "auto",
    seed: int = 0,
    verbose: bool = True,
    **kwargs: Any,
) -> nn.Module:
    """A pretrained model with a new classification head for ``labels``, checked.

    The Hub head (1000 ImageNet classes; the stand-in's 10 Fashion-MNIST garments) is
    dropped and a new ``len(labels)``-way head is initialised (from ``seed``, whatever the global generator
    says); the config gets ``num_labels``, ``id2label`` and ``label2id``.

    Args:
        labels: class names in label order (``dataset.features["label"].names``).
        name: a Hub image classifier (see :func:`vitcourse.hub.load_pretrained`).
        profile: ``"auto"``, ``"smoke"`` (the offline stand-in) or ``"full"``.
        seed: seed of the new head.
        verbose: print the one line saying what was loaded.
        **kwargs: passed to :func:`~vitcourse.hub.load_pretrained`.

    Returns:
        A transformers ``*ForImageClassification`` model in train mode, with ``.provenance``.

    Raises:
        ValueError: ``labels`` empty, repeated or not strings.
    """
    from .hub import load_pretrained

    labels = list(labels)
    if len(labels) < 2 or len(set(labels)) != len(labels) or not all(isinstance(label, str) for label in labels):
        raise ValueError(f"labels must be at least two distinct class names (strings), got {labels!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = load_pretrained(name, labels=labels, profile=profile, verbose=verbose, **kwargs)
    check_head(model, labels)
    return model.train()


def _blocks(model: nn.Module) -> tuple[nn.ModuleList, nn.Module | None]:
    """The encoder blocks and the final norm of a Hugging Face ViT or a vitcourse/timm ViT."""
    backbone = getattr(model, "vit", None)
    if backbone is not None:  # transformers 5 keeps the blocks at .layers (4.x: .encoder.layer)
        blocks = backbone.layers if hasattr(backbone, "layers") else backbone.encoder.layer
        return blocks, getattr(backbone, "layernorm", None)
    if isinstance(getattr(model, "blocks", None), nn.Sequential | nn.ModuleList):
        return model.blocks, getattr(model, "norm", None)
    raise TypeError(f"can't find the encoder blocks of a {type(model).__name__} (expected .vit.layers or .blocks)")


def freeze_backbone(model: nn.Module, train_last_blocks: int = 0) -> nn.Module:
    """Freeze every weight but the head (a *linear probe*), or also train the last blocks.

    Args:
        model: a classifier with a head (:func:`head_of`).
        train_last_blocks: also train the last ``k`` encoder blocks and the final norm.

    Returns:
        ``model`` (changed in place).
    """
    model.requires_grad_(False)
    head_of(model).requires_grad_(True)
    if train_last_blocks > 0:
        blocks, norm = _blocks(model)
        if train_last_blocks > len(blocks):
            raise ValueError(f"train_last_blocks={train_last_blocks} but the model has {len(blocks)} blocks")
        for block in list(blocks)[-train_last_blocks:]:
            block.requires_grad_(True)
        if norm is not None:
            norm.requires_grad_(True)
    return model


def unfreeze(model: nn.Module) -> nn.Module:
    """Make every weight trainable again (full fine-tuning); returns ``model``."""
    return model.requires_grad_(True)


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers of scalar parameters."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


# -- training and evaluation ----------------------------------------------------------------


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns.

    Attributes:
        model: the fine-tuned model (the one passed in, trained in place), in eval mode.
        history: the Trainer's log, one dict per logging step and evaluation
            (``loss``, ``eval_loss``, ``eval_accuracy``, ``eval_f1``, ``epoch``, ``step``…).
        seconds: wall-clock training time.
        args: the ``TrainingArguments`` used.
    """

    model: nn.Module
    history: list[dict[str, float]]
    seconds: float
    args: Any = field(repr=False)


def _epoch_printer():
    """A ``TrainerCallback`` printing one line per evaluation: epoch, last training loss, validation metrics."""
    from transformers import TrainerCallback

    class EpochPrinter(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs) -> None:
            losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
            loss = f"train loss {losses[-1]:.3f} | " if losses else ""
            print(
                f"epoch {state.epoch:.0f}/{args.num_train_epochs:g}: {loss}validation accuracy "
                f"{metrics['eval_accuracy']:.3f}, macro F1 {metrics['eval_f1']:.3f}",
                flush=True,
            )

    return EpochPrinter()


def _trainer_metrics(prediction) -> dict[str, float]:
    from .train.metrics import classification_metrics

    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    preds, targets = torch.as_tensor(logits).argmax(-1), torch.as_tensor(prediction.label_ids)
    metrics = classification_metrics(preds, targets, logits.shape[-1])
    return {key: metrics[key] for key in ("accuracy", "precision", "recall", "f1")}


def finetune(
    model: nn.Module,
    train_dataset,
    eval_dataset=None,
    *,
    output_dir: str,
    epochs: float = 3,
    max_steps: int = -1,
    batch_size: int = 32,
    learning_rate: float = 5e-4,
    weight_decay: float = 0.05,
    warmup: float = 0.1,
    seed: int = 0,
    logging_steps: int = 10,
    verbose: bool = True,
    **training_args: Any,
) -> FinetuneResult:
    """Fine-tune ``model`` with ``transformers.Trainer`` (AdamW, linear warm-up then
    linear decay).

    Whatever is frozen stays frozen (:func:`freeze_backbone`): the Trainer only
    optimises parameters with ``requires_grad``. No checkpoints are written and nothing
    is reported (no wandb, no TensorBoard); the CPU is used when there is no GPU.

    Args:
        model: e.g. :func:`load_for_finetuning`'s.
        train_dataset: a ``datasets.Dataset`` transformed by
            :func:`processor_transform`.
        eval_dataset: evaluated after every epoch (accuracy, macro P/R/F1), or None.
        output_dir: where the Trainer may write (logs; no checkpoints).
        epochs: passes over ``train_dataset`` (ignored if ``max_steps > 0``).
        max_steps: stop after this many optimiser steps.
        batch_size: images per step.
        learning_rate: the peak learning rate.
        weight_decay: AdamW's decoupled weight decay.
        warmup: warm-up length, a fraction of the steps (< 1) or a number of steps.
        seed: seed of the data order and of dropout.
        logging_steps: log the training loss every this many steps (into ``history``).
        verbose: print one line per evaluation (instead of the Trainer's log dicts).
        **training_args: any other ``TrainingArguments`` (``lr_scheduler_type``,
            ``gradient_accumulation_steps``, ``fp16``…).

    Returns:
        A :class:`FinetuneResult`.
    """
    from transformers import (
        PrinterCallback,
        ProgressCallback,
        Trainer,
        TrainingArguments,
    )

    if len(train_dataset) == 0:
        raise ValueError("train_dataset is empty: there is nothing to fine-tune on")
    # fails now, with a clear message, if the transform is missing
    collate([train_dataset[0]])
    args = TrainingArguments(
        **{
            "output_dir": str(output_dir),
            "num_train_epochs": epochs,
            "max_steps": max_steps,
            "per_device_train_batch_size": batch_size,
            "per_device_eval_batch_size": 2 * batch_size,
            "learning_rate": learning_rate,
            "weight_decay": weight_decay,
            "warmup_steps": warmup,
            "seed": seed,
            "data_seed": seed,
            "eval_strategy": "epoch" if eval_dataset is not None else "no",
            "logging_steps": logging_steps,
            "save_strategy": "no",
            "report_to": "none",
            "use_cpu": not torch.cuda.is_available(),
            # the transform needs the raw "image" column
            "remove_unused_columns": False,
            "dataloader_num_workers": 0,
            "disable_tqdm": True,
            **training_args,
        }
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collate,
        compute_metrics=_trainer_metrics,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if verbose:
        trainer.add_callback(_epoch_printer())
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return FinetuneResult(model.eval(), list(trainer.state.log_history), seconds, args)


@torch.no_grad()
def evaluate_classifier(model: nn.Module, dataset, batch_size: int = 64) -> dict[str, Any]:
    """The course's metrics of a classifier on a transformed data set.

    Args:
        model: returns logits (a tensor or an output with ``.logits``); run in eval mode.
        dataset: a ``datasets.Dataset`` transformed by :func:`processor_transform` (items
            with ``pixel_values`` and ``labels``).
        batch_size: images per forward pass.

    Returns:
        ``{"accuracy", "precision", "recall", "f1"}`` (macro averages, floats),
        ``"confusion"`` ``(C, C)`` (rows true, columns predicted), ``"per_class"``,
        ``"loss"`` (mean cross-entropy), ``"predictions"`` and ``"targets"`` ``(N,)``,
        ``"num_samples"``.
    """
    from torch.utils.data import DataLoader

    from .train.metrics import classification_metrics, logits_of

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits = []
    targets = []
    try:
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
            logits.append(logits_of(model(batch["pixel_values"].to(device))).float().cpu())
            targets.append(batch["labels"])
    finally:
        model.train(was_training)
    if not logits:
        raise ValueError("evaluate_classifier got an empty data set: there is nothing to measure")
    logits_all, targets_all = torch.cat(logits), torch.cat(targets)  # (N, C), (N,)
    num_classes = logits_all.shape[-1]
    if targets_all.max() >= num_classes:
        raise ValueError(
            f"the data set has labels up to {int(targets_all.max())} but the model has {num_classes} outputs; "
            "replace the head (load_for_finetuning with the data set's class names)"
        )
    preds = logits_all.argmax(dim=-1)
    metrics = classification_metrics(preds, targets_all, num_classes)
    loss = F.cross_entropy(logits_all, targets_all).item()
    return {**metrics, "loss": loss, "predictions": preds, "targets": targets_all, "num_samples": len(targets_all)}
