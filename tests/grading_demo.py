"""The demo TP of the grading tests (tests/fixtures/tpdemo) and submissions made from it.

Submissions are built from the committed student notebook by replacing the code of its
solution cells, so they follow the TP whenever it changes.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbformat

from vitcourse.grading.registry import load_checks

DEMO = Path(__file__).resolve().parent / "fixtures" / "tpdemo"
ASSIGNMENT = load_checks("tpdemo_checks", [DEMO / "checks"])
reference = sys.modules["tpdemo_checks"]  # the demo's reference implementations

NORMALIZE_OK = """
def normalize(x, eps=1e-5):
    variance, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
    return (x - mean) * torch.rsqrt(variance + eps)
"""
NORMALIZE_LAYER_NORM = """
import torch.nn.functional as F

def normalize(x, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], eps=eps)
"""
NORMALIZE_IGNORES_EPS = """
def normalize(x, eps=1e-5):
    centred = x - x.mean(-1, keepdim=True)
    return centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + 1e-5)
"""
NORMALIZE_UNBIASED = """
def normalize(x, eps=1e-5):
    return (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps)
"""
NORMALIZE_LOOPS = """
import time


def normalize(x, eps=1e-5):
    while True:  # never returns (sleeping, so the test suite's two cores keep working)
        time.sleep(0.05)
"""
SCALE_OK = """
class Scale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return self.weight * x
"""
SCALE_NOT_A_PARAMETER = """
class Scale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = torch.ones(dim)

    def forward(self, x):
        return x * self.gamma
"""
COUNTS_OK = "counts = torch.tensor([int((data == value).sum()) for value in range(int(data.max()) + 1)])"
COUNTS_OFF_BY_ONE = "counts = torch.bincount(data)[1:]"

SOLUTION_NAMES = ("normalize", "Scale", "counts")


def student_notebook() -> nbformat.NotebookNode:
    return nbformat.read(DEMO / "tpdemo_alumno.ipynb", as_version=4)


def _defines(cell) -> str | None:
    for name in SOLUTION_NAMES:
        if f"def {name}(" in cell.source or f"class {name}(" in cell.source or cell.source.count(f"{name} = ..."):
            return name
    return None


def submission(**code: str | None) -> nbformat.NotebookNode:
    """The student notebook with the solution cells for ``normalize``, ``Scale``, ``counts`` replaced.

    ``None`` deletes the cell. The ``# TODO`` comment is kept, as a student would.
    """
    notebook = copy.deepcopy(student_notebook())
    cells = []
    for cell in notebook.cells:
        name = _defines(cell) if "solution" in cell.metadata.get("tags", []) else None
        if name in code:
            if code[name] is None:
                continue
            todo = "\n".join(line for line in cell.source.splitlines() if line.startswith("#"))
            cell.source = f"{todo}\n{code[name].strip()}\n"
        cells.append(cell)
    notebook.cells = cells
    return notebook


def replace_cell(notebook: nbformat.NotebookNode, contains: str, source: str | None) -> nbformat.NotebookNode:
    """Replace (or with ``None`` delete) the first code cell whose code contains ``contains``."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and contains in cell.source:
            if source is None:
                del notebook.cells[index]
            else:
                cell.source = source
            return notebook
    raise ValueError(f"no code cell contains {contains!r}")


def add_cell(notebook: nbformat.NotebookNode, source: str, after: str) -> nbformat.NotebookNode:
    """Insert a code cell after the first code cell containing ``after``."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and after in cell.source:
            notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
            return notebook
    raise ValueError(f"no code cell contains {after!r}")


def write(notebook: nbformat.NotebookNode, path: Path) -> Path:
    nbformat.write(notebook, path)
    return path
