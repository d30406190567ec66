"""The run's settings: ``configs/config.yaml``, read and checked before anything runs.

Nothing is hard-coded in the code: paths, sizes, the model and its training recipe all
come from the YAML file, and MLflow records the whole file with every run. The
``smoke`` section holds what the smoke profile changes (fewer images and epochs), so
the same code runs in a minute on a CPU and for hours on a GPU.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from .errors import ProjectError

DEFAULT_CONFIG = Path("configs/config.yaml")
PROFILES = ("smoke", "full")
ARCHITECTURES = ("vit", "deit", "swin", "clip")
DATASETS = ("fashion_mnist", "mnist")


def resolve_profile(profile: str | None) -> str:
    """``"smoke"`` or ``"full"``: the argument, else ``$PROFILE``, else by the hardware.

    Args:
        profile: ``"smoke"``, ``"full"``, ``"auto"`` or ``None``.

    Returns:
        The profile to run.
    """
    profile = profile or os.environ.get("PROFILE") or "auto"
    if profile == "auto":
        import torch

        on_colab = "COLAB_RELEASE_TAG" in os.environ
        return "full" if on_colab or torch.cuda.is_available() else "smoke"
    if profile not in PROFILES:
        raise ProjectError(
            f'profile must be "auto", "smoke" or "full", got {profile!r}'
        )
    return profile


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied, section by section (a new dict)."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _get(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ProjectError(
                f"the config has no {dotted!r}: add it to configs/config.yaml"
            )
        node = node[part]
    return node


def _check_choice(
    config: dict[str, Any], dotted: str, choices: tuple[str, ...]
) -> None:
    value = _get(config, dotted)
    if value not in choices:
        raise ProjectError(
            f"{dotted} must be one of {', '.join(choices)}; got {value!r}"
        )


def _check_positive(
    config: dict[str, Any], dotted: str, optional: bool = False
) -> None:
    value = _get(config, dotted)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        allowed = "a positive number or null" if optional else "a positive number"
        raise ProjectError(f"{dotted} must be {allowed}; got {value!r}")


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Check the values a run depends on; a bad one raises :class:`ProjectError`.

    Args:
        config: the merged config.

    Returns:
        The same config.
    """
    _check_choice(config, "data.dataset", DATASETS)
    for key in ("augment", "flip"):
        if not isinstance(_get(config, f"features.{key}"), bool):
            raise ProjectError(
                f"features.{key} must be true or false; "
                f"got {_get(config, f'features.{key}')!r}"
            )
    _check_choice(config, "model.architecture", ARCHITECTURES)
    for size in ("train_size", "val_size", "test_size"):
        _check_positive(config, f"data.{size}", optional=True)
    for key in ("epochs", "batch_size", "lr"):
        _check_positive(config, f"train.{key}")
    _check_positive(config, "train.patience", optional=True)
    if not isinstance(_get(config, "model.preset"), str):
        raise ProjectError(
            "model.preset must be a model name of vitcourse.models.list_models()"
        )
    if not isinstance(_get(config, "model.config"), dict):
        raise ProjectError(
            "model.config must be a mapping of config fields, e.g. {img_size: 28}"
        )
    if not isinstance(_get(config, "tracking.mlflow"), bool):
        raise ProjectError(
            "tracking.mlflow must be true or false; "
            f"got {_get(config, 'tracking.mlflow')!r}"
        )
    if not isinstance(_get(config, "tracking.group"), str):
        raise ProjectError("tracking.group must be a name, e.g. baseline or patch7")
    for name in ("processed", "raw", "models", "reports", "figures", "logs"):
        _get(config, f"paths.{name}")
    return config


def apply_overrides(config: dict[str, Any], items: list[str] | tuple[str, ...]) -> None:
    """Change values in place from ``KEY=VALUE`` strings (``train.epochs=3``).

    The value is read as YAML (``3`` is a number, ``null`` is None, ``[2, 2]`` a list);
    the key must already exist, so a typo is an error instead of a silent no-op.
    """
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ProjectError(
                f"--set takes KEY=VALUE (e.g. train.epochs=3), got {item!r}"
            )
        *parents, last = key.split(".")
        node = _get(config, ".".join(parents)) if parents else config
        if not isinstance(node, dict) or last not in node:
            raise ProjectError(f"--set {key}: the config has no {key!r}")
        node[last] = yaml.safe_load(text)


def load_config(
    path: str | Path = DEFAULT_CONFIG,
    profile: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """Read the YAML config, apply the smoke section and the overrides, check it all.

    Args:
        path: the YAML file.
        profile: ``"smoke"``, ``"full"``, ``"auto"`` or ``None`` (see
            :func:`resolve_profile`).
        overrides: ``KEY=VALUE`` changes (:func:`apply_overrides`), applied last.

    Returns:
        The config as nested dicts, with ``profile`` set to the resolved profile.

    Raises:
        ProjectError: no such file, not YAML, or a value out of range.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(
            f"no config file at {path}: run from the project's folder or pass --config"
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ProjectError(
            f"{path} is not valid YAML: {error}".replace("\n", " ")
        ) from None
    if not isinstance(raw, dict):
        raise ProjectError(
            f"{path} must hold a mapping of sections (data, model, train, ...)"
        )
    profile = resolve_profile(profile or raw.get("profile"))
    smoke = raw.pop("smoke", {}) or {}
    config = merge(raw, smoke) if profile == "smoke" else raw
    config["profile"] = profile
    apply_overrides(config, overrides)
    return validate(config)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.001}}`` → ``{"train.lr": 0.001}``, as MLflow records it."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
