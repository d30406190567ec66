"""One registry for every model, as in timm: a name → a configured model.

Each preset is a small function that returns a config dataclass; the decorator
records which model class it builds::

    @register_model(ViT)
    def vit_base_patch16_224() -> ViTConfig:
        return ViTConfig(embed_dim=768, depth=12, num_heads=12)

    model = create_model("vit_base_patch16_224", num_classes=10, img_size=32)

Overrides replace config fields (``dataclasses.replace``), so a typo in a field name
fails loudly instead of being ignored. ``get_config`` gives the config without
building anything, for tables of sizes; build on the meta device
(``with torch.device("meta"):``) to count the parameters of a huge model without
allocating its weights.

The package's presets live in the modules of :data:`PRESET_MODULES`, which
``import vitcourse.models`` does not import: the registry imports them on its first use,
:func:`list_models` all of them, :func:`create_model` and :func:`get_config` only as many as
it takes to find the name (in that order, the light ones first), so building a ViT never
imports DETR's torchvision backbone.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

__all__ = ["PRESET_MODULES", "count_parameters", "create_model", "get_config", "list_models", "register_model"]

# Every module of vitcourse.models that registers presets (tests/test_models.py checks the list is
# complete), imported in this order when a name is not registered yet: the cheap ones first.
PRESET_MODULES = (
    "vit",
    "deit",
    "swin",
    "hybrid",
    "resnet",
    "mae",
    "gpt",
    "imagegpt",
    "dvae",
    "dalle",
    "clip",
    "vlm",
    "donut",
    "diffusion.dit",
    "sam.sam",
    "sam2.sam2",
    "detr.detr",
    "detr.grounding",
)


@dataclasses.dataclass(frozen=True)
class _Entry:
    model_class: type[nn.Module] | None  # None: ``make_config`` builds the model itself
    make_config: Callable[..., Any]


_REGISTRY: dict[str, _Entry] = {}


def register_model(model_class: type[nn.Module] | Callable[..., nn.Module]) -> Callable:
    """Register a preset under its function's name.

    Two forms:

    * ``@register_model(ModelClass)`` on a function that returns a config dataclass;
      :func:`create_model` applies the overrides to the config and calls
      ``ModelClass(config)``. Every preset in the package uses this form.
    * ``@register_model`` (bare, as in timm) on a function ``fn(**overrides) -> nn.Module``
      that builds the model itself; overrides are passed to it as keyword arguments.

    Args:
        model_class: the model class the preset builds (first form), or the builder
            function itself (second form).

    Returns:
        The decorator (first form) or the function unchanged (second form).
    """
    if isinstance(model_class, type) and issubclass(model_class, nn.Module):

        def decorator(make_config: Callable[[], Any]) -> Callable[[], Any]:
            _add(make_config.__name__, _Entry(model_class, make_config))
            return make_config

        return decorator
    if callable(model_class):
        _add(model_class.__name__, _Entry(None, model_class))
        return model_class
    raise TypeError(f"register_model expects an nn.Module subclass or a builder function, got {model_class!r}")


def _add(name: str, entry: _Entry) -> None:
    if name in _REGISTRY:
        raise ValueError(f"a model named {name!r} is already registered; pick another function name")
    _REGISTRY[name] = entry


def _load_presets(until: str | None = None) -> None:
    """Import the modules of :data:`PRESET_MODULES`, in order, until ``until`` is registered
    (all of them when ``until`` is None)."""
    for module in PRESET_MODULES:
        if until is not None and until in _REGISTRY:
            return
        importlib.import_module(f"{__package__}.{module}")


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models.

    Args:
        pattern: shell-style pattern, e.g. ``"vit_*"`` or ``"*distilled*"``.

    Returns:
        The matching names, sorted.
    """
    _load_presets()
    return sorted(name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern))


def _entry(name: str) -> _Entry:
    _load_presets(until=name)
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    return _REGISTRY[name]


def get_config(name: str, **overrides: Any) -> Any:
    """The config of a registered preset with ``overrides`` applied, without building the model.

    Args:
        name: a name from :func:`list_models`.
        **overrides: config fields to change, e.g. ``num_classes=10, img_size=32``.

    Returns:
        The config dataclass.
    """
    entry = _entry(name)
    if entry.model_class is None:
        raise ValueError(f"model {name!r} was registered with a builder function and has no config dataclass")
    config = entry.make_config()
    fields = [f.name for f in dataclasses.fields(config)]
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(
            f"{type(config).__name__} of {name!r} has no field(s) {unknown}; its fields are: {', '.join(fields)}"
        )
    return dataclasses.replace(config, **overrides)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model, optionally changing fields of its config.

    Args:
        name: a name from :func:`list_models`, e.g. ``"vit_base_patch16_224"``.
        **overrides: config fields to change, e.g. ``num_classes=10, img_size=32``.

    Returns:
        The model, with freshly initialised weights (no pretrained weights are loaded).

    Raises:
        ValueError: unknown name (the message lists the registered models) or unknown
            config field (the message lists the fields).
    """
    entry = _entry(name)
    if entry.model_class is None:
        return entry.make_config(**overrides)
    return entry.model_class(get_config(name, **overrides))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (works on the meta device too).

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad``.

    Returns:
        The number of scalar parameters.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
