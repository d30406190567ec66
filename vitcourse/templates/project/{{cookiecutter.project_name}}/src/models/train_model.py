"""``make train``: the model of ``configs/config.yaml``, trained, saved in ``models/``.

The model is a preset of ``vitcourse.models`` with the config's fields changed
(:func:`build_model`); the loop is ``vitcourse.train.fit`` (AdamW, warm-up + cosine,
label smoothing, early stopping on the validation set, the best epoch's weights kept),
which also writes the log and, with ``tracking.mlflow``, the MLflow run. The DeiT option
can distil from a teacher checkpoint (``model.teacher``), as DeiT does.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ..command import run
from ..config import flatten
from ..errors import ProjectError
from ..features.build_features import make_augment, make_loaders
from . import tracking

logger = logging.getLogger(__name__)


def create(architecture: str, preset: str, fields: dict[str, Any]) -> nn.Module:
    """A ``vitcourse.models`` preset with some of its config fields changed.

    For ``clip`` the preset is a whole CLIP (two towers); the project keeps only its
    image encoder, with a linear head of ``num_classes`` (:func:`clip_classifier`).

    Raises:
        ProjectError: an unknown preset or field, sizes that don't fit, or CLIP without
            ``vitcourse.models.clip``.
    """
    import vitcourse.models as models

    try:
        if architecture == "clip":
            return clip_classifier(preset, fields)
        return models.create_model(preset, **fields)
    except (ValueError, TypeError) as error:
        raise ProjectError(f"model {preset!r} with {fields}: {error}") from None


def clip_classifier(preset: str, fields: dict[str, Any]) -> nn.Module:
    """CLIP's image encoder (chapter 5) with a linear head, for classification.

    The encoder is a ViT with CLIP's changes (a LayerNorm before the blocks, a patch
    projection without bias, QuickGELU); here it starts from random weights. The text
    tower is not built: a class is a head's output, not a caption.

    Args:
        preset: a CLIP preset of ``vitcourse.models`` (``clip_*``).
        fields: ``num_classes`` and the preset's fields to change (``img_size``,
            ``vision_width``, ...).

    Returns:
        Images ``(B, C, H, W)`` → logits ``(B, num_classes)``.
    """
    import dataclasses

    import vitcourse.models as models

    try:
        from vitcourse.models.clip import CLIPVisionTower
    except ImportError:
        raise ProjectError(
            "model.architecture is clip but this vitcourse has no "
            "vitcourse.models.clip yet (chapter 5); use vit, deit or swin, "
            "or update vitcourse"
        ) from None
    fields = dict(fields)
    num_classes = fields.pop("num_classes", 10)
    clip = models.get_config(preset, **fields)
    vision = dataclasses.replace(clip.vision_config(), num_classes=num_classes)
    return CLIPVisionTower(vision, clip.activation)


def build_model(config: dict[str, Any]) -> nn.Module:
    """The classifier named by ``model.preset`` with the fields of ``model.config``."""
    model = config["model"]
    return create(model["architecture"], model["preset"], model["config"])


def teacher_loss(config: dict[str, Any]) -> nn.Module | None:
    """DeiT's distillation loss from the checkpoint ``model.teacher`` (or ``None``)."""
    name = config["model"].get("teacher")
    if not name:
        return None
    from vitcourse import checkpoints
    from vitcourse.train import CachedTeacher, DistillationLoss

    try:
        teacher = checkpoints.load(name)
    except (LookupError, FileNotFoundError) as error:
        raise ProjectError(
            f"model.teacher {name!r}: {error}; available: {checkpoints.available()}"
        ) from None
    # Augmented views are new every epoch, so the cache only helps without augmentation.
    return DistillationLoss(CachedTeacher(teacher), kind="hard", alpha=0.5)


def train(config: dict[str, Any]) -> dict[str, Any]:
    """Train, keep the best epoch, save the model (``models/``) and the history.

    Returns:
        The best epoch's row of the history.
    """
    from vitcourse.train import DistillationWrapper, fit, save_checkpoint

    torch.manual_seed(config["seed"])
    train_loader, val_loader = make_loaders(config)
    model = build_model(config)
    loss_fn = teacher_loss(config)
    trained = DistillationWrapper(model) if loss_fn is not None else model
    recipe = config["train"]
    group, stamp = config["tracking"]["group"], time.strftime("%m%d-%H%M%S")
    run_name = f"{group}-seed{config['seed']}-{stamp}"
    history = fit(
        trained,
        train_loader,
        val_loader,
        epochs=recipe["epochs"],
        lr=recipe["lr"],
        weight_decay=recipe["weight_decay"],
        warmup=recipe["warmup"],
        label_smoothing=recipe["label_smoothing"],
        patience=recipe["patience"],
        monitor=recipe["monitor"],
        device=recipe["device"],
        loss_fn=loss_fn,
        batch_transform=make_augment(config),
        seed=config["seed"],
        log_file=None,  # src.logs already sends vitcourse's records to logs/train.log
        mlflow=tracking.store(config) if tracking.enabled(config) else False,
        experiment=config["tracking"]["experiment"],
        run_name=run_name,
        params=flatten(config),
        quiet=True,
    )
    models_dir = Path(config["paths"]["models"])
    save_checkpoint(
        models_dir / "model.safetensors",
        model,  # the bare classifier (not the distillation wrapper)
        config={"preset": config["model"]["preset"], **config["model"]["config"]},
        metrics=history.best or history.rows[-1],
        profile=config["profile"],
    )
    (models_dir / "history.json").write_text(json.dumps(history.to_dict(), indent=2))
    resolved = models_dir / "config.yaml"  # the settings this model was trained with
    resolved.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    if tracking.enabled(config):
        run_id = tracking.find_run(config, run_name)
        tracking.run_file(config).write_text(
            json.dumps({"run_id": run_id, "run_name": run_name}, indent=2)
        )
        saved = [
            models_dir / name
            for name in ("model.safetensors", "model.json", "config.yaml")
        ]
        tracking.log_artifacts(config, saved, "model")
        tracking.log_artifacts(
            config, [Path(config["paths"]["logs"]) / "train.log"], "logs"
        )
        logger.info("MLflow run %s (%s)", run_name, run_id)
    best = history.best or history.rows[-1]
    logger.info("best epoch %s: %s", history.best_epoch, best)
    return best


def load_trained(config: dict[str, Any]) -> nn.Module:
    """The classifier saved in ``paths.models``, in eval mode.

    The model is rebuilt from its own card (``model.json``: preset and fields), not
    from the current config, so a model brought back by ``make select`` loads even if
    it was trained with other settings.

    Raises:
        ProjectError: no model yet (run ``make train``) or a damaged file.
    """
    from vitcourse.train import load_checkpoint, read_sidecar

    path = Path(config["paths"]["models"]) / "model.safetensors"
    if not path.exists():
        raise ProjectError(f"{path} does not exist: run `make train` first")
    fields = dict(read_sidecar(path).get("config", {}))
    preset = fields.pop("preset", config["model"]["preset"])
    model = create(config["model"]["architecture"], preset, fields)
    try:
        load_checkpoint(path, model)
    except (RuntimeError, ValueError) as error:
        raise ProjectError(
            f"{path} cannot be loaded: {error}; run `make train`"
        ) from None
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    return run("train", train, argv)


if __name__ == "__main__":
    sys.exit(main())
