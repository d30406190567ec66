"""Checkpoints: weights in safetensors, everything else in a JSON sidecar next to them.

``model.safetensors`` holds only tensors (no pickled code: loading it cannot run
anything), and ``model.json`` holds what a person or a program needs to rebuild and
trust it: the model config, the metrics it reached, the library versions, the date
and the SHA-256 of the weights file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

__all__ = ["file_sha256", "load_checkpoint", "read_sidecar", "save_checkpoint", "sidecar_path"]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(path: str | Path) -> Path:
    """``weights.safetensors`` → ``weights.json``."""
    return Path(path).with_suffix(".json")


def _jsonable(value: Any) -> Any:
    """Tensors and NumPy scalars to plain Python, recursively, so ``json.dump`` accepts them."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write ``path`` (safetensors weights) and its JSON sidecar.

    Args:
        path: file to write, conventionally ending in ``.safetensors``.
        model: the module whose ``state_dict`` is saved (shared tensors are handled).
        config: how to rebuild the model (e.g. ``{"model": "vit_tiny", "img_size": 32}``).
        metrics: what it reached (e.g. ``{"test_accuracy": 0.97}``).
        **extra: anything else worth keeping (data, recipe, ...).

    Returns:
        The sidecar dict (also written to :func:`sidecar_path`), with ``sha256``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, str(path))
    meta = {
        "file": path.name,
        "sha256": file_sha256(path),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "config": config or {},
        "metrics": metrics or {},
        **extra,
        "torch_version": torch.__version__,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    meta = _jsonable(meta)
    sidecar_path(path).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return meta


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The JSON sidecar of a checkpoint (``{}`` if there is none)."""
    sidecar = sidecar_path(path)
    return json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}


def load_checkpoint(path: str | Path, model: nn.Module, strict: bool = True, verify: bool = True) -> dict[str, Any]:
    """Load weights saved by :func:`save_checkpoint` into ``model``.

    Args:
        path: the ``.safetensors`` file.
        model: a module with the same architecture (build it from the sidecar's ``config``).
        strict: every key must match, as in ``load_state_dict``.
        verify: check the file's SHA-256 against the sidecar's, when there is one.

    Returns:
        The sidecar dict.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the hash differs (the file changed since it was saved) or the
            weights don't fit the model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; save one with save_checkpoint(path, model)")
    meta = read_sidecar(path)
    if verify and "sha256" in meta:
        actual = file_sha256(path)
        if actual != meta["sha256"]:
            raise ValueError(
                f"checkpoint {path} has SHA-256 {actual} but its sidecar {sidecar_path(path).name} records "
                f"{meta['sha256']}; the file changed after it was saved: save it again or restore the original"
            )
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
    except RuntimeError as error:  # a tensor of the wrong shape
        raise ValueError(
            f"checkpoint {path} does not fit {type(model).__name__} ({error}); build the model with the "
            f"sidecar's config {meta.get('config')}"
        ) from error
    if strict and (missing or unexpected):
        raise ValueError(
            f"checkpoint {path} does not fit {type(model).__name__}: missing keys {sorted(missing)[:5]}, "
            f"unexpected keys {sorted(unexpected)[:5]}; build the model with the sidecar's config {meta.get('config')}"
        )
    return meta
