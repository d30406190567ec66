"""Execute the book's pages once, several at a time, into the cache the book build reads.

``make book`` runs ``python -m vitcourse.bookexec execute`` before ``jupyter-book build``.
Every page of ``_toc.yml`` that is a notebook (MyST Markdown with a ``jupytext`` header)
is executed in its own folder, with the timeout and ``allow_errors: false`` of
``_config.yml``, and stored in the book's jupyter-cache (``_build/.jupyter_cache``)
exactly as the book build would store it: the build then finds every page cached and
executes nothing. A page whose code did not change since its last execution is not
executed again. Pages run ``--jobs`` at a time (default: the number of cores), the
longest first (by their last recorded time), each with its share of the cores
(``OMP_NUM_THREADS``).

A page that raises stops ``make book`` here with its traceback, before the build would
try it again. Each page's time goes to ``_build/test/times/pages.json``
(:mod:`benchmarks.test_times` prints it).

``python -m vitcourse.bookexec compare`` is the determinism check: every page with a
cell whose output is compared (tag ``nbval-check-output`` or a ``# NBVAL_CHECK_OUTPUT``
line) runs a second time under ``pytest --nbval-lax``, against the outputs the cache
holds. Pages without such cells are not executed again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import nbformat
import yaml

__all__ = ["CACHE", "compared_pages", "execute", "pages", "read_page"]

CACHE = Path("_build") / ".jupyter_cache"
TIMES = Path("_build") / "test" / "times" / "pages.json"
# The reader the book build (myst-nb) records for a MyST page; its entry point is myst-nb's.
READ_DATA = {"type": "plugin", "name": "myst_nb_md"}
COMPARE_TAG = "nbval-check-output"
COMPARE_COMMENT = "# NBVAL_CHECK_OUTPUT"


def _toc_files(entries: list[dict]) -> list[str]:
    files = []
    for entry in entries:
        if "file" in entry:
            files.append(entry["file"])
        for key in ("sections", "chapters", "parts"):
            files += _toc_files(entry.get(key, []))
    return files


def pages(root: Path) -> list[Path]:
    """Every page of ``_toc.yml`` (sections included) that is a MyST notebook, in book order."""
    from myst_nb.core.read import is_myst_markdown_notebook

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"], *_toc_files(toc.get("parts", []) + toc.get("chapters", []) + toc.get("sections", []))]
    found = []
    for name in names:
        path = root / (name if name.endswith(".md") else f"{name}.md")
        if path.exists() and is_myst_markdown_notebook(path.read_text(encoding="utf-8")):
            found.append(path.resolve())
    return found


def read_page(path: Path) -> nbformat.NotebookNode:
    """The page as a notebook, read the way the book build reads it."""
    from myst_nb.core.read import myst_nb_reader_plugin

    return myst_nb_reader_plugin(str(path))


def _config(root: Path) -> dict:
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    return config.get("execute", {}) or {}


def _run_one(root: str, uri: str, timeout: int | None, allow_errors: bool) -> dict:
    """Execute one page in its folder and cache it (runs in a worker process)."""
    from jupyter_cache import get_cache
    from jupyter_cache.executors.utils import create_cache_bundle, single_nb_execution

    cache = get_cache(str(Path(root) / CACHE))
    start = time.monotonic()
    try:
        project = cache.get_project_notebook(uri)
        result = single_nb_execution(project.nb, cwd=str(Path(uri).parent), timeout=timeout, allow_errors=allow_errors)
        if result.err is not None:
            return {"uri": uri, "ok": False, "seconds": result.time, "error": result.exc_string}
        cache.cache_notebook_bundle(
            create_cache_bundle(project, None, None, result.time, None), check_validity=False, overwrite=True
        )
        return {"uri": uri, "ok": True, "seconds": result.time, "error": ""}
    except Exception:  # noqa: BLE001 (reported with the page's name; the others go on)
        return {"uri": uri, "ok": False, "seconds": time.monotonic() - start, "error": traceback.format_exc()}


def _previous_times(root: Path) -> dict[str, float]:
    try:
        data = json.loads((root / TIMES).read_text(encoding="utf-8"))
        return {entry["page"]: entry["seconds"] for entry in data["pages"] if entry.get("executed")}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def execute(
    root: Path, jobs: int | None = None, force: bool = False, only: list[Path] | None = None, log=print
) -> list[dict]:
    """Execute every page that is not cached yet (every page with ``force``), ``jobs`` at a time.

    ``only`` restricts the run to some pages (the others are left as they are).

    Returns one record per page: ``page`` (relative path), ``executed`` (False when the
    cache had it), ``seconds`` (this run's time, or the cached execution's), ``ok``, ``error``.
    """
    from jupyter_cache import get_cache

    root = root.resolve()
    config = _config(root)
    timeout = config.get("timeout", 30)
    allow_errors = bool(config.get("allow_errors", False))
    cache = get_cache(str(root / CACHE))
    wanted = pages(root)
    uris = {str(path) for path in wanted}
    for record in cache.list_project_records():
        if record.uri not in uris or dict(record.read_data) != READ_DATA:
            cache.remove_nb_from_project(record.pk)
    for path in wanted:
        cache.add_nb_to_project(str(path), read_data=READ_DATA)
    stale = {str(path) for path in wanted} if force else {record.uri for record in cache.list_unexecuted()}
    if only:
        stale &= {str(Path(path).resolve()) for path in only}
    previous = _previous_times(root)
    relative = {str(path): str(path.relative_to(root)) for path in wanted}
    order = sorted(stale, key=lambda uri: -previous.get(relative[uri], Path(uri).stat().st_size / 1e3))
    jobs = max(1, jobs or os.cpu_count() or 1)
    if jobs > 1:  # pages at the same time share the cores instead of each taking them all
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(name, str(max(1, (os.cpu_count() or 1) // jobs)))
    log(f"bookexec: {len(wanted)} pages, {len(stale)} to execute, {min(jobs, max(1, len(stale)))} at a time")
    results: dict[str, dict] = {}
    start = time.monotonic()
    if order:
        # fork: the workers inherit the environment and the imported modules, and start at once.
        with ProcessPoolExecutor(max_workers=min(jobs, len(order)), mp_context=get_context("fork")) as pool:
            futures = [pool.submit(_run_one, str(root), uri, timeout, allow_errors) for uri in order]
            for future in as_completed(futures):
                result = future.result()
                results[result["uri"]] = result
                state = "ok" if result["ok"] else "FAILED"
                log(f"bookexec: {relative[result['uri']]}: {state} in {result['seconds']:.1f} s")
    wall = time.monotonic() - start
    records = []
    for path in wanted:
        uri = str(path)
        if uri in results:
            result = results[uri]
            records.append(
                {
                    "page": relative[uri],
                    "executed": True,
                    "seconds": round(result["seconds"], 2),
                    "ok": result["ok"],
                    "error": result["error"],
                }
            )
        else:
            seconds = None
            try:
                seconds = cache.match_cache_notebook(cache.get_project_notebook(uri).nb).data.get("execution_seconds")
            except Exception:  # noqa: BLE001, S110 (an old record without data: no time to show)
                pass
            records.append({"page": relative[uri], "executed": False, "seconds": seconds, "ok": True, "error": ""})
    out = root / TIMES
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"jobs": jobs, "wall_seconds": round(wall, 2), "pages": records}, indent=1), encoding="utf-8"
    )
    return records


def _compared(notebook: nbformat.NotebookNode) -> bool:
    return any(
        cell.cell_type == "code" and (COMPARE_TAG in cell.metadata.get("tags", []) or COMPARE_COMMENT in cell.source)
        for cell in notebook.cells
    )


def compared_pages(root: Path) -> list[Path]:
    """The pages with at least one cell whose output is compared between two runs."""
    return [path for path in pages(root) if _compared(read_page(path))]


def compare(root: Path, pytest_args: list[str]) -> int:
    """Re-run each page with compared cells under nbval against its cached outputs."""
    from jupyter_cache import get_cache

    root = root.resolve()
    cache = get_cache(str(root / CACHE))
    targets = compared_pages(root)
    if not targets:
        print("bookexec compare: no page compares outputs (tag nbval-check-output); nothing to run again")
        return 0
    copies = []
    try:
        for path in targets:
            _, executed = cache.merge_match_into_notebook(read_page(path))
            # Beside the page: nbval runs the kernel in the notebook's folder, as the book did.
            copy = path.with_name(f".{path.stem}.executed.ipynb")
            nbformat.write(executed, copy)
            copies.append(copy)
        command = [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider", *pytest_args]
        return subprocess.call([*command, *map(str, copies)], cwd=root)
    except KeyError as error:
        print(f"bookexec compare: a page is not in the cache; run `make book` first ({error})", file=sys.stderr)
        return 1
    finally:
        for copy in copies:
            copy.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitcourse.bookexec", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("execute", help="execute the pages that are not cached yet")
    run.add_argument("--jobs", "-j", type=int, default=None, help="pages at a time (default: cores)")
    run.add_argument("--force", action="store_true", help="execute every page, cached or not (to time them)")
    run.add_argument("pages", nargs="*", type=Path, help="only these pages (.md) of the toc")
    commands.add_parser("list", help="print the pages, one a line")
    check = commands.add_parser("compare", help="run pages with compared cells again under nbval")
    check.add_argument("pytest_args", nargs="*", help="more pytest arguments (e.g. --junitxml=...)")
    args = parser.parse_args(argv)
    root = Path.cwd()
    if args.command == "list":
        print("\n".join(str(path.relative_to(root.resolve())) for path in pages(root)))
        return 0
    if args.command == "compare":
        return compare(root, args.pytest_args)
    records = execute(root, args.jobs, args.force, args.pages)
    failed = [r for r in records if not r["ok"]]
    for record in failed:
        print(f"\n{record['page']} failed:\n{record['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
