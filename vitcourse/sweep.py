"""Parameter sweeps of a notebook: one papermill run per point of a grid.

A *point notebook* measures one configuration. Its ``parameters`` cell defines the
knobs (``PATCH_SIZE = 64``, ``EMBED_DIM = 8``, …) and ``RESULT_PATH``, and its last
cell writes a JSON object of results (one number or string per key) to
``RESULT_PATH``. :func:`run_sweep` runs it once per point of a grid::

    table = run_sweep("tp1_point.ipynb", {"PATCH_SIZE": [16, 32], "EMBED_DIM": [8, 64]},
                      out_dir="_build/sweep")

and collects one row per point: the grid parameters, the results, ``status``
(``"ok"`` or ``"failed"``), ``error``, ``seconds`` and ``reused``. A failing point is
recorded (its executed notebook shows where it failed) and the sweep goes on.

Everything lands in ``out_dir``::

    out_dir/
        results.csv            the table
        sweep.json             the notebook, its fingerprint, the grid, the fixed parameters
        points/NAME.ipynb      the executed notebook of each point
        points/NAME.json       the point's record: parameters, fingerprint, status, results

With ``reuse=True`` a point whose record holds the same parameters and the same
notebook fingerprint (a hash of its code cells) is read back instead of run again, so
re-executing the cell that calls the sweep costs nothing. Editing the point notebook's
code invalidates every point; a change in an imported package does not (pass
``reuse=False``, or ``--no-reuse``, to force).
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import logging
import math
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

__all__ = [
    "RESULT_PARAMETER",
    "default_out_dir",
    "expand_grid",
    "notebook_fingerprint",
    "notebook_parameters",
    "parse_value",
    "run_sweep",
]

logger = logging.getLogger(__name__)

RESULT_PARAMETER = "RESULT_PATH"
STATUS_COLUMNS = ("status", "error", "seconds", "reused", "notebook")
# Seconds papermill waits for a point's kernel to start (its default, 60, fails on a loaded machine).
KERNEL_START_TIMEOUT = 300
Scalar = bool | int | float | str | None


def parse_value(text: str) -> Scalar:
    """Read a command-line value as the Python value it spells.

    ``"16"`` → 16, ``"0.5"`` → 0.5, ``"1e-3"`` → 0.001, ``"true"``/``"false"`` → bool,
    ``"none"`` → None (case-insensitive); anything else stays a string (quotes, if any,
    are removed: ``"'16'"`` → ``"16"``).
    """
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(stripped)
        except ValueError:
            pass
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        return stripped[1:-1]
    return stripped


def default_out_dir(name: str, start: str | Path | None = None) -> Path:
    """Where a sweep called ``name`` writes, the same from any folder of a checkout.

    Inside a checkout of the course repository (a folder above ``start`` holds
    ``_config.yml`` and ``vitcourse/``) it is ``<checkout>/_build/sweeps/<name>``, out
    of the sources and git-ignored, whether the notebook runs from ``exercises/tp1``
    (papermill) or from ``_build/test/exercises`` (nbval). Elsewhere (Colab) it is
    ``./sweeps/<name>`` under ``start``.

    Args:
        name: folder name of this sweep, e.g. ``"tp1-smoke"``.
        start: where to search from (default: the working directory).
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file() and (folder / "vitcourse").is_dir():
            return folder / "_build" / "sweeps" / name
    return here / "sweeps" / name


def expand_grid(grid: Mapping[str, Sequence[Scalar]]) -> list[dict[str, Scalar]]:
    """Every combination of the grid's values, the last name varying fastest.

    Args:
        grid: ``{name: [value, ...]}``, e.g. ``{"PATCH_SIZE": [16, 32], "EMBED_DIM": [8, 64]}``.

    Returns:
        One ``{name: value}`` dict per point, ``prod(len(values))`` of them.
    """
    if not isinstance(grid, Mapping):
        raise ValueError(f"the grid must be a dict {{name: [values]}}, got {type(grid).__name__}")
    if not grid:
        raise ValueError('the grid is empty: give at least one parameter and its values, e.g. {"PATCH_SIZE": [16, 32]}')
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(
                f"the values of {name!r} must be a list, got {values!r}; "
                f"write {name!r}: [{values!r}] for a single value"
            )
        if not values:
            raise ValueError(f"{name!r} has no values; give at least one, e.g. {name!r}: [16]")
        for value in values:
            _check_scalar(name, value)
        canonical = [_canonical(value) for value in values]
        duplicates = sorted({text for text in canonical if canonical.count(text) > 1})
        if duplicates:
            raise ValueError(f"{name!r} lists the same value more than once ({', '.join(duplicates)}); list each once")
    names = list(grid)
    return [dict(zip(names, combination)) for combination in itertools.product(*grid.values())]


def notebook_fingerprint(notebook: str | Path) -> str:
    """SHA-256 of a notebook's code, the part that decides its results.

    Outputs, execution counts, metadata and Markdown are left out, so opening and saving
    the notebook in Jupyter keeps the fingerprint; any change to a code cell changes it.
    """
    node = nbformat.read(str(notebook), as_version=4)
    digest = hashlib.sha256()
    for cell in node.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.strip().encode("utf-8"))
            digest.update(b"\0")
    return digest.hexdigest()


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """The names and default values of a notebook's ``parameters`` cell.

    Returns:
        ``{name: default}``; a default that isn't a plain literal (``Path("x")``,
        ``2 ** 10``) is returned as None (unknown).
    """
    import papermill

    path = Path(notebook)
    node = nbformat.read(str(path), as_version=4)
    if not any("parameters" in cell.metadata.get("tags", []) for cell in node.cells):
        raise ValueError(
            f"{path} has no cell tagged 'parameters'; tag the cell that defines the knobs and {RESULT_PARAMETER} "
            f"(Jupyter: View → Cell Toolbar → Tags)"
        )
    defaults = {}
    for name, info in papermill.inspect_notebook(str(path)).items():
        try:
            defaults[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            defaults[name] = None
    return defaults


def run_sweep(
    notebook: str | Path,
    grid: Mapping[str, Sequence[Scalar]],
    out_dir: str | Path,
    parameters: Mapping[str, Scalar] | None = None,
    workers: int = 1,
    reuse: bool = True,
    kernel_name: str | None = None,
    timeout: int | None = None,
) -> pd.DataFrame:
    """Run ``notebook`` once per point of ``grid`` with papermill and tabulate the results.

    Args:
        notebook: the point notebook (``.ipynb``) with a ``parameters`` cell defining
            every name in ``grid`` and ``parameters``, and ``RESULT_PATH``.
        grid: ``{name: [values]}``; the sweep runs every combination.
        out_dir: folder for the executed notebooks, the records and ``results.csv``
            (created if needed).
        parameters: fixed values given to every point (e.g. ``{"PROFILE": "smoke"}``).
        workers: points run at once, each in its own papermill process and kernel.
            Timings measured by concurrent points share the CPU; use 1 when they matter.
        reuse: read back a point whose record has the same parameters and notebook
            fingerprint instead of running it again.
        kernel_name: Jupyter kernel to run the points in (default: the notebook's).
        timeout: seconds a single cell may run before the point fails (default: no limit).

    Returns:
        One row per point in grid order: the grid's parameters, the notebook's results,
        ``status`` (``"ok"``/``"failed"``), ``error`` (message or None), ``seconds``
        (run time of the point when it ran), ``reused`` and ``notebook`` (the executed
        notebook, relative to ``out_dir``). ``table.attrs`` holds the notebook, its
        fingerprint, the fixed parameters and the grid.
    """
    notebook = Path(notebook)
    out_dir = Path(out_dir)
    parameters = dict(parameters or {})
    points = _validate(notebook, grid, parameters, workers)
    fingerprint = notebook_fingerprint(notebook)
    (out_dir / "points").mkdir(parents=True, exist_ok=True)
    manifest = {
        "notebook": str(notebook.resolve()),
        "fingerprint": fingerprint,
        "parameters": parameters,
        "grid": {name: list(values) for name, values in grid.items()},
    }
    (out_dir / "sweep.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    def run(point: dict[str, Scalar]) -> dict[str, Any]:
        return _run_point(notebook, fingerprint, point, parameters, out_dir, reuse, kernel_name, timeout)

    if workers == 1:
        records = [run(point) for point in points]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
            records = list(pool.map(run, points))  # each point is a process: the threads only wait

    table = _table(points, records)
    table.to_csv(out_dir / "results.csv", index=False)
    table.attrs.update(manifest)
    failed = int((table["status"] != "ok").sum())
    logger.info(
        "sweep of %s: %d points, %d failed, table in %s", notebook.name, len(points), failed, out_dir / "results.csv"
    )
    return table


def _validate(
    notebook: Path, grid: Mapping[str, Sequence[Scalar]], parameters: dict[str, Scalar], workers: int
) -> list[dict[str, Scalar]]:
    if notebook.suffix != ".ipynb":
        raise ValueError(
            f"papermill runs .ipynb notebooks, got {notebook}; for a Jupytext .md source run "
            f"`python -m vitcourse.notebooks sync {notebook}` and pass the .ipynb"
        )
    if not notebook.is_file():
        raise FileNotFoundError(f"no point notebook at {notebook.resolve()}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer (points run at once), got {workers!r}")
    points = expand_grid(grid)
    for name, value in parameters.items():
        _check_scalar(name, value)
    defaults = notebook_parameters(notebook)
    if RESULT_PARAMETER not in defaults:
        raise ValueError(
            f"{notebook.name}'s parameters cell must define {RESULT_PARAMETER} (the JSON file the notebook writes its "
            f"results to); add {RESULT_PARAMETER} = None to it"
        )
    both = sorted(set(grid) & set(parameters))
    if both:
        raise ValueError(f"{', '.join(both)} given both in the grid and as a fixed parameter; give each in one place")
    for name in [*grid, *parameters]:
        if name == RESULT_PARAMETER:
            raise ValueError(f"{RESULT_PARAMETER} is set by the sweep itself (one file per point); don't pass it")
        if name not in defaults:
            known = ", ".join(sorted(n for n in defaults if n != RESULT_PARAMETER))
            raise ValueError(
                f"{name!r} is not a parameter of {notebook.name}; its parameters cell defines: {known}. "
                f"Check the spelling, or add {name} to that cell"
            )
    for point in points:
        for name, value in {**parameters, **point}.items():
            _check_type(notebook, name, value, defaults[name])
    return points


def _check_scalar(name: str, value: Any) -> None:
    if not isinstance(value, (bool, int, float, str)) and value is not None:
        raise ValueError(
            f"{name}={value!r}: sweep values must be numbers, strings, booleans or None, got {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name}={value!r}: sweep values must be finite numbers")


def _check_type(notebook: Path, name: str, value: Scalar, default: Any) -> None:
    """A value of another kind than the default (``"16"`` for ``16``) is almost always a typo."""
    if default is None or value is None:
        return
    if isinstance(default, (bool, str)):
        fits = type(value) is type(default)
    elif isinstance(default, int):
        fits = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:  # a list, a dict…: sweeps don't set those
        fits = False
    if not fits:
        raise ValueError(
            f"{name}={value!r} ({type(value).__name__}): {notebook.name} expects a value of type "
            f"{type(default).__name__} (its default is {default!r})"
        )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _point_name(point: Mapping[str, Scalar], parameters: Mapping[str, Scalar]) -> str:
    """A readable, file-safe name, unique per set of values: ``PATCH_SIZE-16_EMBED_DIM-8_1a2b3c4d``.

    The grid values are spelled out; the hash also covers the fixed parameters, so a
    sweep with another ``PROFILE`` doesn't overwrite this one's points.
    """
    readable = "_".join(f"{name}-{value}" for name, value in point.items())
    readable = re.sub(r"[^A-Za-z0-9.=+-]+", "_", readable).strip("_")[:80]
    digest = hashlib.sha256(_canonical({**parameters, **point}).encode("utf-8")).hexdigest()[:8]
    return f"{readable}_{digest}"


def _run_point(
    notebook: Path,
    fingerprint: str,
    grid_point: dict[str, Scalar],
    parameters: dict[str, Scalar],
    out_dir: Path,
    reuse: bool,
    kernel_name: str | None,
    timeout: int | None,
) -> dict[str, Any]:
    """Run (or read back) one point; never raises for a failure of the notebook itself."""
    points_dir = out_dir / "points"
    name = _point_name(grid_point, parameters)
    point = {**parameters, **grid_point}
    record_path = points_dir / f"{name}.json"
    result_path = points_dir / f"{name}.result.json"
    executed = points_dir / f"{name}.ipynb"
    if reuse and record_path.exists():
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            record = {}
        if (
            record.get("status") == "ok"
            and record.get("fingerprint") == fingerprint
            and _canonical(record.get("parameters")) == _canonical(point)
        ):
            logger.info("reused %s", name)
            return {**record, "reused": True}

    result_path.unlink(missing_ok=True)
    executed.unlink(missing_ok=True)
    parameters_file = points_dir / f"{name}.parameters.json"  # JSON is YAML: types survive the command line
    parameters_file.write_text(
        json.dumps({**point, RESULT_PARAMETER: str(result_path.resolve())}, indent=2), encoding="utf-8"
    )
    # A papermill process per point: papermill changes the working directory of its
    # process and keeps global state, so points must not share one.
    command = [
        sys.executable, "-m", "papermill", str(notebook.resolve()), str(executed.resolve()),
        "-f", str(parameters_file.resolve()), "--no-progress-bar", "--log-level", "WARNING",
        # A busy machine can take over papermill's default minute to start a kernel.
        "--start-timeout", str(KERNEL_START_TIMEOUT),
    ]  # fmt: skip
    if kernel_name:
        command += ["--kernel", kernel_name]
    if timeout:
        command += ["--execution-timeout", str(int(timeout))]
    record = {
        "parameters": point,
        "notebook": str(notebook.resolve()),
        "fingerprint": fingerprint,
        "executed_notebook": str(executed.relative_to(out_dir)),
    }
    logger.info("running %s", name)
    start = time.perf_counter()
    process = subprocess.run(command, cwd=points_dir, capture_output=True, text=True)
    record["seconds"] = round(time.perf_counter() - start, 3)
    try:
        if process.returncode != 0:
            raise RuntimeError(_failure_message(executed, process.stderr))
        record.update(status="ok", error=None, results=_read_results(result_path, point))
    except (RuntimeError, ValueError) as error:
        record.update(status="failed", error=str(error), results={})
        logger.warning("point %s failed: %s (see %s)", name, record["error"], executed)
    result_path.unlink(missing_ok=True)
    parameters_file.unlink(missing_ok=True)
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return {**record, "reused": False}


def _failure_message(executed: Path, stderr: str) -> str:
    """``ename: evalue (cell N)`` from the executed notebook, else the end of papermill's stderr."""
    try:
        node = nbformat.read(str(executed), as_version=4)
    except (OSError, ValueError):
        node = None
    for cell in node.cells if node else []:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                count = cell.get("execution_count")
                where = f" (cell [{count}])" if count else ""
                return f"{output.ename}: {output.evalue}{where}"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:]) or "papermill failed without a message"


def _read_results(result_path: Path, point: Mapping[str, Scalar]) -> dict[str, Scalar]:
    if not result_path.exists():
        raise RuntimeError(f"the notebook ran to the end but wrote no results to {RESULT_PARAMETER}")
    results = json.loads(result_path.read_text(encoding="utf-8"))
    if not isinstance(results, dict):
        raise ValueError(f"{RESULT_PARAMETER} must hold a JSON object {{name: value}}, got {type(results).__name__}")
    for key, value in results.items():
        if key in point or key in STATUS_COLUMNS:
            raise ValueError(f"result {key!r} has the name of a parameter or of a column of the sweep; rename it")
        if isinstance(value, (list, dict)):
            raise ValueError(
                f"result {key!r} is a {type(value).__name__}; a sweep table holds one number or string per cell"
            )
    return results


def _table(points: list[dict[str, Scalar]], records: list[dict[str, Any]]) -> pd.DataFrame:
    grid_names = list(points[0]) if points else []
    result_names: list[str] = []
    for record in records:
        result_names += [key for key in record["results"] if key not in result_names]
    rows = []
    for point, record in zip(points, records):
        row = {name: point[name] for name in grid_names}
        row.update({key: record["results"].get(key) for key in result_names})
        row.update(
            status=record["status"],
            error=record["error"],
            seconds=record["seconds"],
            reused=record["reused"],
            notebook=record["executed_notebook"],
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=[*grid_names, *result_names, *STATUS_COLUMNS])
