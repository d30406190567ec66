"""The package, its tests, benchmarks, chapters and TPs pass ruff's checks (rules in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> str:
    found = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(found).exists():
        pytest.fail("ruff is not installed: `pip install -r requirements.txt` installs it")
    return found


def test_ruff_finds_nothing():
    done = subprocess.run([_ruff(), "check", "--output-format", "concise", "."], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"ruff check . found problems (fix them, or `ruff check --fix .`):\n{done.stdout}"


def test_ruff_would_catch_an_unused_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n")
    done = subprocess.run([_ruff(), "check", "--config", str(ROOT / "pyproject.toml"), str(sample)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "F401" in done.stdout
