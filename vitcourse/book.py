"""Helpers for chapter notebooks: putting computed numbers into the prose, reading repository files.

In the built book, ``glue("acc", percent(0.973, 1))`` lets the Markdown say
``{glue:text}`acc``` so no number in the text is ever typed by hand
(myst-nb's glue). On Colab or in plain Jupyter, myst-nb is not installed and the
value is simply shown, so the notebook still reads well.

:func:`repository_file` finds a file of the repository that is not part of the
package (the benchmark results, say): in a checkout, on disk; on Colab, where only the
package was installed from git, downloaded from the very commit that was installed.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["glue", "repository_file", "thousands"]

# U+202F NARROW NO-BREAK SPACE: the thin space Spanish typesetting puts between thousands
# (book/ESTILO.md), and one that a line break never splits.
THIN_SPACE = "\u202f"


def thousands(n: int) -> str:
    """An integer with thin spaces between thousands, as the book writes them: ``86 567 656``.

    Args:
        n: the integer (a float is rounded first).

    Returns:
        The digits grouped by three with U+202F between groups; four-digit numbers too
        (``1 000``), so that every table column reads alike.
    """
    return f"{round(n):,}".replace(",", THIN_SPACE)


def _plain_scalar(value: Any) -> Any:
    # myst-nb formats the text/plain repr; np.float64(0.5) or tensor(0.5) would not parse.
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Register ``value`` under ``name`` for ``{glue:text}`` / ``{glue}`` roles in the book.

    Args:
        name: key used in the Markdown, e.g. ``{glue:text}`name:.2f```.
        value: a number, string, table or figure. NumPy and PyTorch scalars (what
            ``df.loc[...]`` or ``tensor.max()`` return) are glued as plain Python
            numbers, so that format specs like ``:.2f`` work in the text.
        display: also show the value where the cell runs.

    Returns:
        ``value``, so the call can sit at the end of an expression.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab, plain Jupyter: no book to glue into
        if display:
            from IPython.display import display as show

            show(value)
        return value
    myst_glue(name, _plain_scalar(value), display=display)
    return value


def _raw_url(direct_url: dict, path: str) -> str:
    """The raw-file URL of ``path`` at the commit pip installed (PEP 610's ``direct_url.json``)."""
    url, commit = direct_url.get("url", ""), direct_url.get("vcs_info", {}).get("commit_id")
    prefix = "https://github.com/"
    if not url.startswith(prefix) or not commit:
        raise FileNotFoundError(
            f"{path} is a file of the repository, not of the package, and vitcourse was not installed from a "
            f"GitHub commit (direct_url.json: {direct_url}); open this notebook from a clone of the repository"
        )
    repository = url[len(prefix) :].removesuffix(".git").rstrip("/")
    return f"https://raw.githubusercontent.com/{repository}/{commit}/{path}"


def repository_file(path: str, root: str | Path | None = None, timeout: float = 10.0) -> Path:
    """A file of the vitcourse repository, e.g. ``"benchmarks/results/vit_hf_timm.json"``.

    Args:
        path: relative to the repository root.
        root: the checkout (default: the nearest folder above the working directory
            holding ``_config.yml``).
        timeout: seconds to wait for GitHub when the file must be downloaded.

    Returns:
        A local path: the checkout's file, or a copy downloaded (once) from the commit
        of the installed package into ``~/.cache/vitcourse/repository``.

    Raises:
        FileNotFoundError: neither a checkout nor a package installed from GitHub.
    """
    if root is None:
        here = Path.cwd().resolve()
        root = next((folder for folder in (here, *here.parents) if (folder / "_config.yml").exists()), None)
    if root is not None and (Path(root) / path).exists():
        return Path(root) / path
    from importlib.metadata import distribution

    direct_url = json.loads(distribution("vitcourse").read_text("direct_url.json") or "{}")
    url = _raw_url(direct_url, path)
    cache = Path(os.environ.get("VITCOURSE_CACHE", Path.home() / ".cache" / "vitcourse")) / "repository"
    local = cache / direct_url["vcs_info"]["commit_id"] / path
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as response:
            local.write_bytes(response.read())
    return local
