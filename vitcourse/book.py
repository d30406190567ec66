"""Helpers for chapter notebooks: putting computed numbers into the prose.

In the built book, ``glue("acc", 0.973)`` lets the Markdown say
``{glue:text}`acc:.1%``` so no number in the text is ever typed by hand
(myst-nb's glue). On Colab or in plain Jupyter, myst-nb is not installed and the
value is simply shown, so the notebook still reads well.
"""

from __future__ import annotations

from typing import Any

__all__ = ["glue"]


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
