"""vitcourse.sweep and `vitcourse sweep`: grid expansion, validation, runs, reuse, failures, workers, CLI.

The runs use a tiny point notebook (no torch import), so each point costs about a
kernel start-up; runs of two points or more use two workers (the test process only waits).
"""

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from vitcourse.cli import main
from vitcourse.sweep import (
    default_out_dir,
    expand_grid,
    notebook_fingerprint,
    notebook_parameters,
    parse_value,
    run_sweep,
)

PARAMETERS = """\
X = 1
Y = 0.5
MODE = "ok"  # "ok", "raise", "silent" (writes nothing), "list" (writes a list)
BARRIER = ""  # folder where two points wait for each other
RESULT_PATH = None
"""

BODY = """\
import json
import time
from pathlib import Path

if BARRIER:  # proves that two points run at the same time: each waits for the other
    Path(BARRIER, f"arrived-{X}").touch()
    deadline = time.time() + 90
    while len(list(Path(BARRIER).glob("arrived-*"))) < 2:
        if time.time() > deadline:
            raise TimeoutError("the other point never started: the points did not run concurrently")
        time.sleep(0.05)
if MODE == "raise":
    raise ValueError(f"boom at X={X}")
if MODE != "silent":
    value = [X] if MODE == "list" else X * Y
    Path(RESULT_PATH).write_text(json.dumps({"product": value, "label": f"x{X}"}))
"""


def write_point_notebook(path: Path, body: str = BODY, parameters: str | None = PARAMETERS) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [nbformat.v4.new_markdown_cell("# A point")]
    if parameters is not None:
        cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    cells.append(nbformat.v4.new_code_cell(body))
    notebook.cells = cells
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def point(tmp_path):
    return write_point_notebook(tmp_path / "point.ipynb")


# --- pure functions ----------------------------------------------------------------------------


def test_expand_grid_is_the_cartesian_product_last_name_fastest():
    points = expand_grid({"PATCH_SIZE": [16, 32, 64], "EMBED_DIM": [8, 64]})
    assert len(points) == 6
    assert points[:3] == [
        {"PATCH_SIZE": 16, "EMBED_DIM": 8},
        {"PATCH_SIZE": 16, "EMBED_DIM": 64},
        {"PATCH_SIZE": 32, "EMBED_DIM": 8},
    ]
    assert expand_grid({"A": [1]}) == [{"A": 1}]
    assert expand_grid({"A": (1, 2)}) == [{"A": 1}, {"A": 2}]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({}, "the grid is empty"),
        ([("A", [1])], "must be a dict"),
        ({"A": []}, "has no values"),
        ({"A": 16}, "must be a list"),
        ({"A": "16,32"}, "must be a list"),
        ({"A": [16, 16]}, "more than once"),
        ({"A": [[1, 2]]}, "numbers, strings, booleans or None"),
        ({"A": [float("nan")]}, "finite"),
    ],
)
def test_expand_grid_rejects_bad_grids(grid, message):
    with pytest.raises(ValueError, match=message):
        expand_grid(grid)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("16", 16),
        ("-3", -3),
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("true", True),
        ("False", False),
        ("none", None),
        ("smoke", "smoke"),
        ("'16'", "16"),
        (" astronaut ", "astronaut"),
    ],
)
def test_parse_value_reads_numbers_booleans_none_and_strings(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_notebook_parameters_and_fingerprint(tmp_path, point):
    assert notebook_parameters(point) == {"X": 1, "Y": 0.5, "MODE": "ok", "BARRIER": "", "RESULT_PATH": None}
    fingerprint = notebook_fingerprint(point)
    # Saving with outputs, metadata or other prose keeps the fingerprint ...
    notebook = nbformat.read(point, as_version=4)
    notebook.cells[0].source = "# Another title"
    notebook.metadata["widgets"] = {"state": {}}
    notebook.cells[2].outputs = [nbformat.v4.new_output("stream", text="hi")]
    notebook.cells[2].execution_count = 7
    nbformat.write(notebook, point)
    assert notebook_fingerprint(point) == fingerprint
    # ... any change of code changes it.
    notebook.cells[2].source += "\nprint('changed')"
    nbformat.write(notebook, point)
    assert notebook_fingerprint(point) != fingerprint


def test_default_out_dir_is_under_the_checkout_build_folder_from_any_subfolder(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "vitcourse").mkdir(parents=True)
    (checkout / "_config.yml").write_text("title: x\n")
    nested = checkout / "_build" / "test" / "exercises"
    nested.mkdir(parents=True)
    expected = checkout / "_build" / "sweeps" / "tp1-smoke"
    assert default_out_dir("tp1-smoke", start=checkout / "vitcourse") == expected
    assert default_out_dir("tp1-smoke", start=nested) == expected
    elsewhere = tmp_path / "content"
    elsewhere.mkdir()
    assert default_out_dir("tp1-smoke", start=elsewhere) == elsewhere / "sweeps" / "tp1-smoke"


# --- validation before anything runs -----------------------------------------------------------


@pytest.mark.parametrize(
    ("grid", "parameters", "message"),
    [
        ({"Z": [1]}, None, r"'Z' is not a parameter of point.ipynb; its parameters cell defines: BARRIER, MODE, X, Y"),
        ({"X": [1]}, {"WIDTH": 3}, "'WIDTH' is not a parameter"),
        ({"X": [1]}, {"X": 2}, "both in the grid and as a fixed parameter"),
        ({"RESULT_PATH": ["a.json"]}, None, "set by the sweep itself"),
        ({"X": ["16"]}, None, r"X='16' \(str\): point.ipynb expects a value of type int"),
        ({"X": [1.5]}, None, "expects a value of type int"),
        ({"MODE": [3]}, None, "expects a value of type str"),
        ({"X": [1]}, {"Y": "half"}, "expects a value of type float"),
        ({}, None, "the grid is empty"),
    ],
)
def test_run_sweep_validates_before_running(tmp_path, point, grid, parameters, message):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        run_sweep(point, grid, out, parameters=parameters)
    assert not out.exists(), "nothing is written when the sweep is invalid"


def test_run_sweep_validates_the_notebook_and_workers(tmp_path, point):
    with pytest.raises(ValueError, match="papermill runs .ipynb notebooks"):
        run_sweep(tmp_path / "point.md", {"X": [1]}, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no point notebook"):
        run_sweep(tmp_path / "missing.ipynb", {"X": [1]}, tmp_path / "out")
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        run_sweep(point, {"X": [1]}, tmp_path / "out", workers=0)
    untagged = write_point_notebook(tmp_path / "untagged.ipynb", parameters=None)
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        run_sweep(untagged, {"X": [1]}, tmp_path / "out")
    no_result = write_point_notebook(tmp_path / "no_result.ipynb", parameters="X = 1\n")
    with pytest.raises(ValueError, match="must define RESULT_PATH"):
        run_sweep(no_result, {"X": [1]}, tmp_path / "out")


# --- runs (one kernel per point) ---------------------------------------------------------------


@pytest.mark.slow
def test_run_sweep_records_every_point_and_goes_on_after_a_failure(tmp_path, point):
    out = tmp_path / "out"
    table = run_sweep(point, {"X": [1, 2], "MODE": ["ok", "raise"]}, out, parameters={"Y": 2.0}, workers=2)

    assert list(table.columns) == ["X", "MODE", "product", "label", "status", "error", "seconds", "reused", "notebook"]
    assert table[["X", "MODE"]].values.tolist() == [[1, "ok"], [1, "raise"], [2, "ok"], [2, "raise"]]
    assert table["status"].tolist() == ["ok", "failed", "ok", "failed"]
    assert table["product"].tolist()[::2] == [2.0, 4.0] and table["label"].tolist()[::2] == ["x1", "x2"]
    assert table["error"][1].startswith("ValueError: boom at X=1")
    assert table["error"][3].startswith("ValueError: boom at X=2")
    assert table["error"][[0, 2]].isna().all()
    assert (table["seconds"] > 0).all() and not table["reused"].any()
    # Files: the table, the manifest, one executed notebook and one record per point, no leftovers.
    assert pd.read_csv(out / "results.csv")["status"].tolist() == table["status"].tolist()
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["parameters"] == {"Y": 2.0} and manifest["grid"] == {"X": [1, 2], "MODE": ["ok", "raise"]}
    for name in table["notebook"]:
        executed = nbformat.read(out / name, as_version=4)
        assert any("injected-parameters" in cell.metadata.get("tags", []) for cell in executed.cells)
    assert len(list((out / "points").glob("*.ipynb"))) == 4
    assert len(list((out / "points").glob("*.json"))) == 4  # the records; parameter and result files are gone
    record = json.loads((out / table["notebook"][0]).with_suffix(".json").read_text())
    assert record["parameters"] == {"Y": 2.0, "X": 1, "MODE": "ok"} and record["results"]["product"] == 2.0


@pytest.mark.slow
def test_bad_results_are_recorded_as_failures(tmp_path, point):
    table = run_sweep(point, {"MODE": ["silent", "list"]}, tmp_path / "out", workers=2)
    assert table["status"].tolist() == ["failed", "failed"]
    assert "wrote no results to RESULT_PATH" in table["error"][0]
    assert "'product' is a list" in table["error"][1]


@pytest.mark.slow
def test_reuse_skips_current_points_and_reruns_changed_or_failed_ones(tmp_path, point):
    out = tmp_path / "out"
    grid = {"X": [1, 2], "MODE": ["ok"]}
    first = run_sweep(point, grid, out, workers=2)
    executed = [out / name for name in first["notebook"]]
    stamps = [path.stat().st_mtime_ns for path in executed]

    again = run_sweep(point, {"X": [1, 2, 3], "MODE": ["ok"]}, out)  # one new point
    assert again["reused"].tolist() == [True, True, False]
    assert again["seconds"].tolist()[:2] == first["seconds"].tolist()  # read back, not measured again
    assert [path.stat().st_mtime_ns for path in executed] == stamps  # not executed again

    one = {"X": [2], "MODE": ["ok"]}
    fixed_changed = run_sweep(point, one, out, parameters={"Y": 3.0})  # other fixed parameters: another point
    assert fixed_changed["reused"].tolist() == [False] and fixed_changed["product"].tolist() == [6.0]

    assert run_sweep(point, one, out, reuse=False)["reused"].tolist() == [False]

    notebook = nbformat.read(point, as_version=4)
    notebook.cells[2].source = notebook.cells[2].source.replace("X * Y", "X * Y * 10")
    nbformat.write(notebook, point)
    changed = run_sweep(point, one, out)
    assert changed["reused"].tolist() == [False], "a changed point notebook invalidates its points"
    assert changed["product"].tolist() == [10.0]

    failing = run_sweep(point, {"X": [1], "MODE": ["raise"]}, out)
    assert run_sweep(point, {"X": [1], "MODE": ["raise"]}, out)["reused"].tolist() == [False]  # failures rerun
    assert failing["status"].tolist() == ["failed"]


@pytest.mark.slow
def test_workers_run_points_at_the_same_time(tmp_path, point):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    # Each point waits until the other one has started: run one after the other, the first would time out.
    table = run_sweep(point, {"X": [1, 2]}, tmp_path / "out", parameters={"BARRIER": str(barrier)}, workers=2)
    assert table["status"].tolist() == ["ok", "ok"], table["error"].tolist()
    assert table["product"].tolist() == [0.5, 1.0]  # rows in grid order whatever finished first


# --- command line ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_sweep_prints_the_table_and_fails_when_a_point_fails(tmp_path, point, capsys):
    out = tmp_path / "cli"
    command = ["sweep", str(point), "--grid", "X=1,2", "--grid", "MODE=ok", "-p", "Y=2", "--out", str(out), "-q"]
    code = main([*command, "--workers", "2"])
    printed = capsys.readouterr()
    assert code == 0
    lines = printed.out.strip().splitlines()
    assert lines[0].split()[:4] == ["X", "MODE", "product", "label"]
    assert lines[1].split()[:4] == ["1", "ok", "2", "x1"] and lines[2].split()[:4] == ["2", "ok", "4", "x2"]
    assert "2 points, 0 failed" in printed.err
    assert (out / "results.csv").exists()

    command = ["sweep", str(point), "--grid", "MODE=ok,raise", "--out", str(out), "-q", "--no-reuse"]
    code = main([*command, "--workers", "2"])
    printed = capsys.readouterr()
    assert code == 1
    assert "1 failed" in printed.err and "failed: MODE=raise: ValueError: boom at X=1" in printed.err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--grid", "Z=1,2"], "'Z' is not a parameter"),
        (["--grid", "X=1", "--grid", "X=2"], "given twice"),
        (["--grid", "X="], "has no values"),
        (["--grid", "X=a"], "expects a value of type int"),
        (["--grid", "X16"], "expected NAME=VALUE"),
    ],
)
def test_cli_sweep_reports_bad_grids_in_one_line(tmp_path, point, capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(point), *arguments, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
