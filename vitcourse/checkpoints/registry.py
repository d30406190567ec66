"""The registry of checkpoints this project trains itself and ships inside the package.

The weights are small safetensors files next to this module, so ``pip install``
(Colab included) brings them along and the ``smoke`` profile needs no download.
Each checkpoint has a card, ``<name>.json``, next to its weights ``<name>.safetensors``
(one file per checkpoint, so chapters that add checkpoints never edit a shared file):

.. code-block:: json

    {"file": "vit_shapes.safetensors", "sha256": "…",
     "model": "vit_…", "config": {"img_size": 32, "num_classes": 8, "…": "…"},
     "data": {"name": "shapes", "seed": 0, "…": "…"}, "recipe": {"epochs": 20, "…": "…"},
     "metrics": {"test_accuracy": 0.97}, "build": "python -m vitcourse.checkpoints.build vit_shapes",
     "date": "…", "torch_version": "…",
     "provenance": {"commit": "…", "machine": "…", "torch_threads": 1, "wall_seconds": 600.0}}

``build`` is the command that trains it again (each chapter's models have their own
committed training script).

:func:`load` rebuilds the model from ``model`` + ``config`` with
:func:`vitcourse.models.create_model`, checks the file's SHA-256 against the entry and
loads the weights. The build script :mod:`vitcourse.checkpoints.build` writes both.

The registry folder is this package's by default; the environment variable
``VITCOURSE_CHECKPOINTS`` or the ``root=`` argument points elsewhere (tests, experiments).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..train.checkpoint import file_sha256

__all__ = [
    "ChecksumError",
    "UnknownCheckpointError",
    "available",
    "info",
    "load",
    "register",
    "registry_dir",
    "verify",
    "weights_path",
]

ENV_VAR = "VITCOURSE_CHECKPOINTS"


class UnknownCheckpointError(LookupError):
    """No checkpoint of that name in the registry."""


class ChecksumError(ValueError):
    """A weights file whose SHA-256 differs from the registry's."""


def registry_dir(root: str | Path | None = None) -> Path:
    """The folder holding the cards and the weights: ``root``, ``$VITCOURSE_CHECKPOINTS`` or this package."""
    if root is not None:
        return Path(root)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return Path(__file__).resolve().parent


def _read(root: str | Path | None) -> dict[str, dict[str, Any]]:
    """Every card in the folder: ``{name: entry}``, one ``<name>.json`` per checkpoint."""
    return {card.stem: json.loads(card.read_text(encoding="utf-8")) for card in sorted(registry_dir(root).glob("*.json"))}


def _rebuild_command(name: str, entry: dict[str, Any]) -> str:
    return entry.get("build", f"python -m vitcourse.checkpoints.build {name}")


def available(root: str | Path | None = None) -> list[str]:
    """Sorted names of the registered checkpoints."""
    return sorted(_read(root))


def info(name: str, root: str | Path | None = None) -> dict[str, Any]:
    """The registry entry of ``name`` (model, config, data, recipe, metrics, hash, date, versions).

    Raises:
        UnknownCheckpointError: no such name; the message lists the available ones.
    """
    entries = _read(root)
    if name not in entries:
        names = ", ".join(sorted(entries)) or "none (build them with python -m vitcourse.checkpoints.build)"
        raise UnknownCheckpointError(f"no checkpoint named {name!r} in {registry_dir(root)}; available: {names}")
    return {"name": name, **entries[name]}


def weights_path(name: str, root: str | Path | None = None) -> Path:
    """Path of the safetensors file of ``name``."""
    return registry_dir(root) / info(name, root)["file"]


def verify(name: str, root: str | Path | None = None) -> Path:
    """Check that the weights of ``name`` exist and match the registry's SHA-256.

    Returns:
        The path of the verified file.

    Raises:
        FileNotFoundError: the file is missing.
        ChecksumError: the hash differs; the message names the file, both hashes and the fix.
    """
    entry = info(name, root)
    path = registry_dir(root) / entry["file"]
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint {name!r} is registered but its weights {path} are missing; reinstall vitcourse or "
            f"rebuild it with: {_rebuild_command(name, entry)}"
        )
    actual = file_sha256(path)
    if actual != entry["sha256"]:
        raise ChecksumError(
            f"checkpoint {name!r}: {path} has SHA-256 {actual} but the registry expects {entry['sha256']}; the file "
            f"is corrupt or was replaced. Reinstall vitcourse, or rebuild it with: "
            f"{_rebuild_command(name, entry)}"
        )
    return path


def _create_model(model: str, **config: Any) -> nn.Module:
    from ..models import create_model

    return create_model(model, **config)


def load(
    name: str,
    root: str | Path | None = None,
    device: str | torch.device = "cpu",
    builder: Callable[..., nn.Module] | None = None,
) -> nn.Module:
    """Build the model of a shipped checkpoint, load its verified weights, put it in eval mode.

    Args:
        name: one of :func:`available`.
        root: registry folder (default: see :func:`registry_dir`).
        device: where to put the model.
        builder: ``builder(model_name, **config) -> nn.Module``; default
            :func:`vitcourse.models.create_model`.

    Returns:
        The model, in eval mode, on ``device``.

    Raises:
        UnknownCheckpointError, FileNotFoundError, ChecksumError: see :func:`info` and :func:`verify`.
    """
    from safetensors.torch import load_model

    entry = info(name, root)
    path = verify(name, root)
    model = (builder or _create_model)(entry["model"], **entry.get("config", {}))
    load_model(model, str(path), strict=True)
    return model.to(device).eval()


def register(
    name: str,
    model: nn.Module,
    model_name: str,
    config: dict[str, Any],
    root: str | Path | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Save ``model``'s weights as ``<name>.safetensors`` in the registry folder and record its entry.

    Args:
        name: checkpoint name.
        model: the trained module.
        model_name: the name :func:`vitcourse.models.create_model` knows it by.
        config: the overrides that rebuild it (``img_size``, ``num_classes``, ...).
        root: registry folder.
        **fields: more of the entry: ``data``, ``recipe``, ``metrics``, ``build``, the
            command that trains it again (default: ``python -m vitcourse.checkpoints.build <name>``),
            and ``provenance``: commit, machine, torch threads, date and wall seconds of the
            run (default: :func:`vitcourse.scripts.provenance.provenance` at registration).

    Returns:
        The entry written.
    """
    import datetime as dt

    from safetensors.torch import save_model

    from .. import __version__
    from ..scripts.provenance import provenance

    if "provenance" not in fields:
        fields["provenance"] = provenance()
    folder = registry_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    save_model(model, str(path), metadata={"name": name, "model": model_name})
    path.chmod(0o644)  # safetensors writes 0600; graded notebooks read it as another user
    entry = {
        "file": path.name,
        "sha256": file_sha256(path),
        "model": model_name,
        "config": config,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        **fields,
        "date": dt.date.today().isoformat(),
        "torch_version": torch.__version__,
        "vitcourse_version": __version__,
    }
    text = json.dumps(entry, indent=2, ensure_ascii=False)
    (folder / f"{name}.json").write_text(text + "\n", encoding="utf-8")
    return {"name": name, **entry}
