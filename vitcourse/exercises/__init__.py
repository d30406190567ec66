"""What the practical exercises (TPs) need from the package.

* :mod:`vitcourse.exercises.tp1`: how much of an image a linear patch embedding can
  keep (PCA of its patches), for TP1's sweep over patch size and embedding dimension;
* ``tp1_point.ipynb``: the notebook that measures one point of that sweep, run by
  :func:`vitcourse.sweep.run_sweep` (it ships with the package, so the sweep also runs
  on Colab after ``pip install``). :func:`point_notebook` finds it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["point_notebook"]


def point_notebook(name: str = "tp1_point") -> Path:
    """Path of a point notebook shipped in this folder, e.g. ``point_notebook("tp1_point")``."""
    path = Path(__file__).with_name(f"{name}.ipynb")
    if not path.is_file():
        shipped = sorted(p.stem for p in Path(__file__).parent.glob("*.ipynb"))
        raise FileNotFoundError(f"no point notebook {name!r} in {path.parent}; the package ships {shipped}")
    return path
