"""Where a notebook runs and how: the profile, the device, the seeds.

Every chapter and exercise starts with a ``parameters`` cell (``PROFILE``, ``SEED``)
and then calls :func:`setup`. The same code serves two profiles:

* ``smoke``: CPU, offline, seconds per notebook, data that ships with the project;
* ``full``: the real Hub models and data sets, on a GPU (Colab).

``PROFILE = "auto"`` picks ``full`` on Colab and ``smoke`` everywhere else; the
environment variable ``VITCOURSE_PROFILE`` overrides ``auto``.
"""

from __future__ import annotations

import logging
import os
import random
import sys
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["PROFILES", "Runtime", "on_colab", "resolve_profile", "seed_everything", "setup"]

PROFILES = ("smoke", "full")

logger = logging.getLogger(__name__)


def on_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def resolve_profile(profile: str = "auto") -> str:
    """Turn ``"auto"`` into ``"smoke"`` or ``"full"``; validate anything else."""
    if profile == "auto":
        profile = os.environ.get("VITCOURSE_PROFILE") or ("full" if on_colab() else "smoke")
    if profile not in PROFILES:
        raise ValueError(f'PROFILE must be "auto", "smoke" or "full", got {profile!r}')
    return profile


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so a rerun gives the same numbers."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Runtime:
    """What :func:`setup` decided: ``profile``, ``device``, ``seed`` and ``colab``."""

    profile: str
    device: torch.device
    seed: int
    colab: bool

    @property
    def smoke(self) -> bool:
        """True in the CPU/offline profile."""
        return self.profile == "smoke"

    def __str__(self) -> str:
        where = "Colab" if self.colab else "local"
        return f"vitcourse runtime: profile={self.profile}, device={self.device}, seed={self.seed} ({where})"


def _configure_plotly() -> None:
    # Jupyter Book and nbclient have no front-end to load plotly's mimetype renderer,
    # so figures must carry their own HTML; Colab needs its own renderer.
    if os.environ.get("PLOTLY_RENDERER"):
        return
    try:
        import plotly.io as pio
    except ImportError:  # plotly is optional for the package itself
        return
    pio.renderers.default = "colab" if on_colab() else "notebook"


def setup(profile: str = "auto", seed: int = 0, device: str | None = None) -> Runtime:
    """Resolve the profile, pick the device, seed everything, configure figures.

    Args:
        profile: ``"auto"``, ``"smoke"`` or ``"full"``.
        seed: seed for every random generator.
        device: force a device (``"cpu"``, ``"cuda"``); by default CUDA when available.
            The ``smoke`` profile always runs on the CPU so its numbers are the same
            everywhere.

    Returns:
        A :class:`Runtime` describing the choices.
    """
    profile = resolve_profile(profile)
    if device is None:
        device = "cuda" if profile == "full" and torch.cuda.is_available() else "cpu"
    seed_everything(seed)
    _configure_plotly()
    runtime = Runtime(profile=profile, device=torch.device(device), seed=seed, colab=on_colab())
    logger.info("%s", runtime)
    return runtime
