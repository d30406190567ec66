"""Notebook plumbing of the book: Jupytext pairs, the Colab set-up cell, the parameters cell.

Every chapter and exercise is written as MyST Markdown (``.md``, the source) and
committed beside its ``.ipynb`` twin without outputs, so Colab can open it. Every
notebook starts with two cells:

1. the **set-up cell** (tag ``colab-setup``): on Colab it installs ``vitcourse`` at
   the book's version from the repository named in ``_config.yml``, with the extras
   the notebook's code uses (:func:`notebook_extras`: ``hf`` always, ``track`` where
   it tracks with MLflow) and, in notebooks that call ``vitcourse.runtime.setup()``
   (whose ``full`` profile runs on CUDA), says which GPU it found or how to get one;
   elsewhere it does nothing. Its text is generated here, never edited by hand;
2. the **parameters cell** (tag ``parameters``): ``PROFILE`` and ``SEED``, which
   papermill overrides.

The committed ``.ipynb`` of a notebook that calls ``setup()`` also carries the metadata
that makes Colab open it on a GPU runtime (:data:`COLAB_GPU_METADATA`).

``python -m vitcourse.notebooks sync`` rewrites the set-up cells and regenerates every
``.ipynb`` from its ``.md``; ``python -m vitcourse.notebooks check`` reports pairs that
drifted apart. A fork changes ``repository.url`` in ``_config.yml`` and runs ``sync``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import re
import sys
from pathlib import Path

import nbformat
import yaml

__all__ = [
    "COLAB_GPU_METADATA",
    "COLAB_METADATA",
    "PARAMETERS_TAG",
    "SETUP_TAG",
    "check_pair",
    "colab_metadata",
    "find_pairs",
    "install_spec",
    "notebook_extras",
    "repository_root",
    "setup_cell_source",
    "sync_pair",
    "uses_gpu",
]

SETUP_TAG = "colab-setup"
PARAMETERS_TAG = "parameters"
PAIRED_DIRS = ("book", "exercises", "vitcourse")

# Notebook metadata Colab reads when it opens a notebook from GitHub: every notebook is a
# Colab notebook; those whose full profile runs on CUDA ask for a GPU runtime (a T4, the
# one the free tier offers).
COLAB_METADATA = {"colab": {"provenance": []}}
COLAB_GPU_METADATA = {"accelerator": "GPU", "colab": {"provenance": [], "gpuType": "T4"}}
# A call of vitcourse.runtime.setup(), however it was imported.
_RUNTIME_SETUP_CALL = re.compile(r"\bsetup\s*\(")

BASE_EXTRAS: tuple[str, ...] = ("hf",)
"""The extras every notebook installs on Colab (pyproject.toml's optional dependencies)."""
EXTRA_USES: dict[str, re.Pattern[str]] = {
    # MLflow: imported, through vitcourse's tracker, or by a generated project (whose
    # training tracks with MLflow by default, new_project(..., mlflow=True))
    "track": re.compile(
        r"^\s*(?:from|import)\s+(?:mlflow|vitcourse\.train\.tracking)\b|\bnew_project\(", re.MULTILINE
    ),
}
"""Further extras, each with the code that needs it (see :func:`notebook_extras`)."""


def repository_root(start: Path | None = None) -> Path:
    """The folder holding ``_config.yml``, searching upwards from ``start`` (default: here)."""
    here = (start or Path(__file__)).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").exists():
            return folder
    raise FileNotFoundError(f"no _config.yml above {here}; run this from a checkout of the vitcourse repository")


def _package_version(root: Path) -> str:
    tree = ast.parse((root / "vitcourse" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError("vitcourse/__init__.py defines no __version__")


def install_spec(root: Path | None = None, extras: tuple[str, ...] = BASE_EXTRAS) -> str:
    """The pip requirement that installs this book's version: ``vitcourse[hf] @ git+URL@vVERSION``.

    Args:
        root: the repository root (default: found from here).
        extras: the optional dependencies to install, among :data:`BASE_EXTRAS` and
            :data:`EXTRA_USES` (see :func:`notebook_extras`).

    Raises:
        ValueError: an extra the set-up cells don't know.
    """
    known = (*BASE_EXTRAS, *EXTRA_USES)
    unknown = [extra for extra in extras if extra not in known]
    if unknown or not extras:
        raise ValueError(
            f"extras must be some of {known} (pyproject.toml's optional dependencies), got {tuple(extras)}; "
            "a new extra needs an entry in vitcourse.notebooks.EXTRA_USES"
        )
    root = root or repository_root()
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    url = config["repository"]["url"].rstrip("/")
    return f"vitcourse[{','.join(extras)}] @ git+{url}@v{_package_version(root)}"


def setup_cell_source(
    root: Path | None = None, gpu: bool = False, extras: tuple[str, ...] = BASE_EXTRAS
) -> str:
    """Source of the set-up cell every notebook starts with.

    Args:
        root: the repository root (default: found from here).
        gpu: also report the GPU, for notebooks whose ``full`` profile runs on CUDA
            (see :func:`uses_gpu`).
        extras: the extras it installs (see :func:`notebook_extras`).

    Returns:
        The cell's code.
    """
    if not gpu:
        return "\n".join(
            [
                "# Set-up: on Colab, install vitcourse at this book's version (elsewhere nothing happens).",
                "import sys",
                "",
                'if "google.colab" in sys.modules:',
                f'    %pip install --quiet "{install_spec(root, extras)}"',
            ]
        )
    return "\n".join(
        [
            "# Set-up: on Colab, install vitcourse at this book's version and check for a GPU,",
            "# which setup() uses in the full profile (elsewhere nothing happens).",
            "import sys",
            "",
            'if "google.colab" in sys.modules:',
            f'    %pip install --quiet "{install_spec(root, extras)}"',
            "    import torch",
            "",
            "    if torch.cuda.is_available():",
            '        print("GPU:", torch.cuda.get_device_name(0))',
            "    else:",
            '        print("No GPU: Runtime > Change runtime type > T4 GPU, then run all again.")',
        ]
    )


def _code(notebook: nbformat.NotebookNode) -> list[str]:
    """The sources of the code cells, the set-up cell aside."""
    return [
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "code" and SETUP_TAG not in cell.get("metadata", {}).get("tags", [])
    ]


def uses_gpu(notebook: nbformat.NotebookNode) -> bool:
    """True when a code cell (other than the set-up cell) calls ``vitcourse.runtime.setup()``.

    ``setup()`` puts the ``full`` profile on CUDA, so such a notebook wants a GPU on Colab.
    """
    return any(_RUNTIME_SETUP_CALL.search(source) for source in _code(notebook))


def notebook_extras(notebook: nbformat.NotebookNode) -> tuple[str, ...]:
    """The extras of ``vitcourse`` a notebook's set-up cell installs on Colab.

    :data:`BASE_EXTRAS` always, plus each extra of :data:`EXTRA_USES` whose pattern a code
    cell (other than the set-up cell) matches: ``("hf", "track")`` for a notebook that
    imports ``mlflow`` or ``vitcourse.train.tracking``, or generates a project.
    """
    code = _code(notebook)
    needed = [extra for extra, uses in EXTRA_USES.items() if any(uses.search(source) for source in code)]
    return (*BASE_EXTRAS, *needed)


def colab_metadata(notebook: nbformat.NotebookNode) -> dict:
    """The Colab metadata a notebook's ``.ipynb`` must carry: a GPU runtime where it uses one."""
    return copy.deepcopy(COLAB_GPU_METADATA if uses_gpu(notebook) else COLAB_METADATA)


def find_pairs(root: Path | None = None) -> list[Path]:
    """Every Jupytext ``.md`` notebook source under ``book/``, ``exercises/`` and ``vitcourse/``."""
    root = root or repository_root()
    sources = []
    for folder in PAIRED_DIRS:
        for path in sorted((root / folder).rglob("*.md")):
            if "_build" in path.parts or ".ipynb_checkpoints" in path.parts:
                continue
            head = path.read_text(encoding="utf-8")[:600]
            if head.startswith("---") and "jupytext:" in head:
                sources.append(path)
    return sources


def _comparable(notebook: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [
        (cell.cell_type, cell.source.strip(), sorted(cell.get("metadata", {}).get("tags", [])))
        for cell in notebook.cells
    ]


def _read_md(path: Path) -> nbformat.NotebookNode:
    import jupytext

    return jupytext.read(path, fmt="md:myst")


def check_pair(md_path: Path, root: Path | None = None) -> list[str]:
    """Problems with one pair: missing or stale ``.ipynb``, stored outputs, missing cells.

    Returns:
        A list of human-readable problems; empty when the pair is in order.
    """
    root = root or repository_root(md_path)
    problems = []
    notebook = _read_md(md_path)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    name = md_path.relative_to(root)
    if len(code_cells) < 2 or SETUP_TAG not in code_cells[0].metadata.get("tags", []):
        problems.append(f"{name}: the first code cell must be the set-up cell tagged {SETUP_TAG!r}")
    elif code_cells[0].source.strip() != setup_cell_source(
        root, gpu=uses_gpu(notebook), extras=notebook_extras(notebook)
    ):
        problems.append(f"{name}: the set-up cell is out of date (run `make sync-notebooks`)")
    if len(code_cells) < 2 or PARAMETERS_TAG not in code_cells[1].metadata.get("tags", []):
        problems.append(f"{name}: the second code cell must be tagged {PARAMETERS_TAG!r} (PROFILE, SEED)")
    elif "PROFILE" not in code_cells[1].source or "SEED" not in code_cells[1].source:
        problems.append(f"{name}: the parameters cell must define PROFILE and SEED")
    ipynb = md_path.with_suffix(".ipynb")
    if not ipynb.exists():
        return [*problems, f"{name}: no paired {ipynb.name} (run `make sync-notebooks`)"]
    paired = nbformat.read(ipynb, as_version=4)
    if _comparable(paired) != _comparable(notebook):
        problems.append(f"{name}: {ipynb.name} differs from the .md source (run `make sync-notebooks`)")
    if any(cell.get("outputs") or cell.get("execution_count") for cell in paired.cells if cell.cell_type == "code"):
        problems.append(f"{ipynb.relative_to(root)}: committed with outputs; commit it without (make sync-notebooks)")
    expected = colab_metadata(notebook)
    found = {key: paired.metadata.get(key) for key in ("accelerator", "colab")}
    if found != {"accelerator": expected.get("accelerator"), "colab": expected["colab"]}:
        problems.append(
            f"{ipynb.relative_to(root)}: Colab metadata is {found}, expected {expected} "
            "(run `make sync-notebooks`)"
        )
    return problems


def _stable_cell_ids(notebook: nbformat.NotebookNode) -> None:
    # Jupytext draws random cell ids; ids derived from the cells' content make `sync`
    # idempotent, so the committed .ipynb changes only where the .md did.
    seen: set[str] = set()
    for cell in notebook.cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()
        cell_id, n = digest[:8], 1
        while cell_id in seen:
            cell_id, n = f"{digest[:8]}-{n}", n + 1
        seen.add(cell_id)
        cell.id = cell_id


def sync_pair(md_path: Path, root: Path | None = None) -> bool:
    """Refresh the set-up cell in the ``.md`` and regenerate its ``.ipynb`` without outputs.

    Returns:
        True when a file changed.
    """
    import jupytext

    root = root or repository_root(md_path)
    notebook = _read_md(md_path)
    setup_source = setup_cell_source(root, gpu=uses_gpu(notebook), extras=notebook_extras(notebook))
    setup = nbformat.v4.new_code_cell(setup_source, metadata={"tags": [SETUP_TAG]})
    code_positions = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    first = code_positions[0] if code_positions else len(notebook.cells)
    if code_positions and SETUP_TAG in notebook.cells[first].metadata.get("tags", []):
        notebook.cells[first].source = setup.source
    else:
        notebook.cells.insert(first, setup)
    changed = False
    md_text = jupytext.writes(notebook, fmt="md:myst")
    if md_text != md_path.read_text(encoding="utf-8"):
        md_path.write_text(md_text, encoding="utf-8")
        changed = True
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    _stable_cell_ids(notebook)
    # Only in the .ipynb: the .md is not what Colab opens.
    notebook.metadata.pop("accelerator", None)
    notebook.metadata.update(colab_metadata(notebook))
    ipynb = md_path.with_suffix(".ipynb")
    ipynb_text = jupytext.writes(notebook, fmt="ipynb")
    if not ipynb.exists() or ipynb.read_text(encoding="utf-8") != ipynb_text:
        ipynb.write_text(ipynb_text, encoding="utf-8")
        changed = True
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitcourse.notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["sync", "check"])
    parser.add_argument("paths", nargs="*", type=Path, help=".md sources (default: all of them)")
    args = parser.parse_args(argv)
    root = repository_root(Path.cwd())
    sources = [p.resolve() for p in args.paths] or find_pairs(root)
    if args.command == "sync":
        for path in sources:
            if sync_pair(path, root):
                print(f"updated {path.relative_to(root)}")
        return 0
    problems = [problem for path in sources for problem in check_pair(path, root)]
    print("\n".join(problems) or f"{len(sources)} notebook pairs in sync")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
