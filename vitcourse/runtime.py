"""Where a notebook runs and how: the profile, the device, the seeds.

Every chapter and exercise starts with a ``parameters`` cell (``PROFILE``, ``SEED``)
and then calls :func:`setup`. The same code serves two profiles:

* ``smoke``: CPU, offline, seconds per notebook, data that ships with the project;
* ``full``: the real Hub models and data sets, on a GPU (Colab).

``PROFILE = "auto"`` picks ``full`` on Colab and ``smoke`` everywhere else; the
environment variable ``VITCOURSE_PROFILE`` overrides ``auto``.

:func:`setup` also chooses how plotly figures are displayed: Colab's own renderer on
Colab, and elsewhere the ``"vitcourse"`` renderer, whose output the static book draws
with one shared, offline copy of plotly.js (see :func:`book_figure_bundle`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import random
import sys
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "PLOTLY_RENDERER",
    "PROFILES",
    "Runtime",
    "book_figure_bundle",
    "on_colab",
    "resolve_profile",
    "seed_everything",
    "setup",
]

PROFILES = ("smoke", "full")
PLOTLY_RENDERER = "vitcourse"

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


# Figures drawn in this process, so that two identical figures still get distinct div ids
# while a rerun of the same notebook writes the same ids (and the same HTML) again.
_figure_counter = itertools.count(1)

# Runs the figure once the page is parsed: by then the deferred MathJax that typesets LaTeX
# labels has loaded. Where plotly.js is missing (a front-end that ignores the plotly
# mimetype and does not load it), it says so instead of leaving a blank box.
_DRAW_WHEN_READY = """(function () {{
  function draw() {{
    if (typeof Plotly === "undefined") {{
      var div = document.getElementById("{div_id}");
      var message = "plotly.js is not loaded here: open this notebook in JupyterLab, VS Code or Colab.";
      if (div) {{ div.textContent = message; }}
      return;
    }}
{script}
  }}
  if (document.readyState === "loading") {{ document.addEventListener("DOMContentLoaded", draw); }} else {{ draw(); }}
}})();"""


def book_figure_bundle(fig_dict: dict, config: dict | None = None) -> dict[str, object]:
    """The display bundle of one plotly figure, readable by the book and by live notebooks.

    * ``application/vnd.plotly.v1+json``: the figure as data; JupyterLab, Notebook 7 and
      VS Code draw it with their own plotly.js.
    * ``text/html``: a ``<div>`` and the ``Plotly.newPlot`` call **without** plotly.js
      (4.8 MB); the built book loads one shared copy from ``_static`` on the pages that
      have figures (``book/_ext/vitcourse_assets.py``), so it works offline.

    Args:
        fig_dict: the figure as a dict (``fig.to_dict()``).
        config: plotly.js config options (``{"displayModeBar": False}``, ...).

    Returns:
        The mime bundle, ``{mimetype: data}``.
    """
    from plotly.io import to_html
    from plotly.io._base_renderers import PlotlyRenderer

    bundle = PlotlyRenderer(config=config).to_mimebundle(dict(fig_dict))
    figure_json = json.dumps(bundle["application/vnd.plotly.v1+json"], sort_keys=True)
    digest = hashlib.sha1(figure_json.encode()).hexdigest()[:10]
    div_id = f"fig-{next(_figure_counter)}-{digest}"
    html = to_html(
        fig_dict,
        config=config,
        auto_play=False,
        include_plotlyjs=False,
        include_mathjax=False,
        full_html=False,
        default_height=525,
        validate=False,
        div_id=div_id,
    )
    if html.count("<script>") != 1 or html.count("</script>") != 1:
        raise RuntimeError(
            "plotly.io.to_html returned HTML with other than one <script> block; this plotly "
            "version is not supported by vitcourse.runtime.book_figure_bundle (update it)."
        )
    head, rest = html.split("<script>")
    script, tail = rest.split("</script>")
    script = _DRAW_WHEN_READY.format(div_id=div_id, script=script.strip())
    bundle["text/html"] = f"{head}<script>{script}</script>{tail}"
    return bundle


def _book_renderer():
    from plotly.io._base_renderers import MimetypeRenderer

    class BookRenderer(MimetypeRenderer):
        """Plotly renderer ``"vitcourse"``: see :func:`book_figure_bundle`."""

        def __init__(self, config: dict | None = None):
            self.config = dict(config) if config else {}

        def to_mimebundle(self, fig_dict: dict) -> dict[str, object]:
            return book_figure_bundle(fig_dict, self.config)

    return BookRenderer()


def _configure_plotly() -> None:
    # Colab draws figures with its own renderer; everywhere else (the book build, nbval,
    # JupyterLab) the "vitcourse" renderer: the plotly mimetype plus HTML without plotly.js.
    # A PLOTLY_RENDERER set by the user wins.
    if os.environ.get("PLOTLY_RENDERER"):
        return
    try:
        import plotly.io as pio
    except ImportError:  # plotly is optional for the package itself
        return
    pio.renderers[PLOTLY_RENDERER] = _book_renderer()
    pio.renderers.default = "colab" if on_colab() else PLOTLY_RENDERER


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
