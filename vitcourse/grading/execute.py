"""Run one submitted notebook with papermill, as a child process the grader can kill.

``python -m vitcourse.grading.execute JOB.json`` executes a notebook in a fresh kernel
and writes the executed notebook and a JSON summary (per cell: ran, failed with what,
timed out). Compared with a plain ``papermill`` call:

* a cell that fails does not stop the run (``allow_errors``): later parts still run;
* a cell that runs past ``cell_timeout`` is interrupted and the run goes on;
* outputs stop being recorded past ``max_output_bytes`` (a notebook that prints
  megabytes can't fill the grader's memory or the instructor's disk);
* the kernel's process id is written to a file, so the grader can kill it, and
  whatever it started, when the whole run is past its time (:mod:`.grader`);
* optionally, a last cell saves the values of named variables as plain data
  (:func:`vitcourse.grading.probes.to_wire`) for the parts that grade what the
  notebook produced.

The kernel inherits this process's environment, which the grader sets (no network,
``PROFILE=smoke``). :func:`run_notebook`, at the end, is the grader's side: it starts
this module as a child process and kills it, kernel included, past the total timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from .processes import kill_sessions, read_pid, watch_grader

if TYPE_CHECKING:
    from .grader import GradeOptions

__all__ = ["EXPORT_TAG", "added_by_the_run", "export_variables", "main", "run_notebook", "summarise"]

EXPORT_TAG = "vitcourse-export"
_ADDED_TAGS = ("injected-parameters", EXPORT_TAG, "papermill-error-cell-tag")


def added_by_the_run(cell) -> bool:
    """Whether papermill or the grader added ``cell`` (it is not the student's, and takes no position)."""
    return any(tag in _ADDED_TAGS for tag in cell.metadata.get("tags", []))


def export_variables(names: list[str], path: str) -> None:
    """Save ``names`` from the caller's notebook namespace as plain data (runs in the kernel)."""
    import torch

    import __main__
    from vitcourse.grading.probes import to_wire

    values = {}
    for name in names:
        if name in vars(__main__):
            try:
                values[name] = {"value": to_wire(vars(__main__)[name])}
            except Exception as error:  # noqa: BLE001 (an object to_wire can't read is reported, not fatal)
                values[name] = {"error": f"{type(error).__name__}: {error}"[:300]}
        else:
            values[name] = {"missing": True}
    torch.save(values, path)


def _export_cell(names: list[str], path: str) -> nbformat.NotebookNode:
    source = (
        "# Added by the grader: saves the values it grades.\n"
        "from vitcourse.grading.execute import export_variables as _vitcourse_export\n"
        f"_vitcourse_export({names!r}, {path!r})"
    )
    return nbformat.v4.new_code_cell(source, metadata={"tags": [EXPORT_TAG]})


def _mark(cell, what: str) -> None:
    """Note on the cell itself (it is saved with the notebook) what happened to it."""
    cell.setdefault("metadata", {}).setdefault("vitcourse", {})[what] = True


def _capped_engine(max_output_bytes: int, pid_file: str | None):
    """A papermill engine whose client caps outputs, records timeouts, kernel deaths and the kernel's pid."""
    from nbclient.exceptions import DeadKernelError
    from nbclient.util import run_sync
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine
    from papermill.utils import merge_kwargs, remove_args

    class CappedClient(PapermillNotebookClient):
        recorded = 0
        truncated = False

        async def async_start_new_kernel(self, **kwargs):
            await super().async_start_new_kernel(**kwargs)
            pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
            if pid_file and pid:
                Path(pid_file).write_text(str(pid))

        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            try:
                return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
            except DeadKernelError:
                _mark(cell, "kernel_died")
                raise

        execute_cell = run_sync(async_execute_cell)  # the sync entry point papermill calls

        async def _async_handle_timeout(self, timeout, cell=None):
            if cell is not None:
                _mark(cell, "timeout")
            return await super()._async_handle_timeout(timeout, cell)

        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if out is None or out.get("output_type") == "error":
                return out
            size = len(json.dumps(out, default=str))
            self.recorded += size
            if self.recorded > max_output_bytes:
                outs.remove(out)
                if not self.truncated:
                    self.truncated = True
                    note = f"[vitcourse: salidas cortadas; el notebook ya escribió más de {max_output_bytes} bytes]\n"
                    outs.append(nbformat.v4.new_output("stream", name="stderr", text=note))
                return None
            return out

    class CappedEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(
                kwargs,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            return CappedClient(nb_man, **final).execute()

    return CappedEngine


def summarise(notebook: nbformat.NotebookNode) -> list[dict]:
    """Per code cell: its position in the submitted notebook (from 1), ``status`` and the error.

    ``status`` is ``ok``, ``error`` (with ``ename``, ``evalue``), ``timeout``, ``running``
    (the run was killed during it) or ``not-run``. Cells papermill or the grader added
    are left out and don't count in the positions.
    """
    cells, position = [], 0
    for cell in notebook.cells:
        if added_by_the_run(cell):
            continue
        position += 1
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("papermill", {})
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        entry = {"cell": position, "status": "ok" if meta.get("start_time") else "not-run"}
        marks = cell.metadata.get("vitcourse", {})
        if marks.get("timeout"):
            entry["status"] = "timeout"
        elif marks.get("kernel_died"):
            entry.update(
                status="error", ename="KernelDied", evalue="el kernel se cerró en esta celda (¿exit()? ¿memoria?)"
            )
        elif errors:
            entry.update(
                status="error", ename=errors[0].get("ename", ""), evalue=str(errors[0].get("evalue", ""))[:300]
            )
        elif meta.get("start_time") and not meta.get("end_time"):
            entry["status"] = "running"
        cells.append(entry)
    return cells


def _kill_kernel(pid_file: str | None) -> None:
    pid = read_pid(pid_file)
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def run(job: dict) -> dict:
    """Execute the notebook described by ``job`` (see :mod:`.grader`); return the summary."""
    import papermill as pm
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    papermill_engines.register("vitcourse-capped", _capped_engine(job["max_output_bytes"], job.get("pid_file")))
    watch_grader(job.get("grader_pid"), on_exit=lambda: _kill_kernel(job.get("pid_file")))
    notebook = nbformat.read(job["input"], as_version=4)
    if job.get("export_names"):
        notebook.cells.append(_export_cell(job["export_names"], job["export_path"]))
    start = time.monotonic()
    aborted = ""
    try:
        executed = pm.execute_notebook(
            notebook,
            job["output"],
            parameters=job.get("parameters") or None,
            engine_name="vitcourse-capped",
            kernel_name="python3",
            cwd=job["cwd"],
            execution_timeout=job["cell_timeout"],
            progress_bar=False,
            log_output=False,
            allow_errors=True,
            interrupt_on_timeout=True,
            raise_on_iopub_timeout=False,
            start_timeout=120,
        )
    except PapermillExecutionError:  # cells failed; papermill saved the notebook first
        executed = nbformat.read(job["output"], as_version=4)
    except Exception as error:  # the kernel died, or papermill gave up: keep what was saved
        aborted = f"{type(error).__name__}: {error}"[:300]
        if not Path(job["output"]).exists():
            raise
        executed = nbformat.read(job["output"], as_version=4)
    cells = summarise(executed)
    for cell in cells:
        if cell["status"] == "running":
            cell.update(status="error", ename="KernelError", evalue=aborted or "la ejecución se cortó en esta celda")
    summary = {"seconds": round(time.monotonic() - start, 2), "cells": cells, "aborted": aborted}
    Path(job["summary"]).write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return summary


# --------------------------------------------------------------------------- the grader's side


def run_notebook(
    workdir: Path, notebook: Path, options: GradeOptions, export: list[str], env: dict[str, str]
) -> tuple[list[dict], bool, Path | None]:
    """The grader's side: run this module on ``notebook`` in ``workdir``, under the total timeout.

    Returns:
        ``(cells, timed_out, executed_path)``: the per-cell summary, whether the whole
        run was killed for time, and the executed notebook (``None`` if none was saved).
    """
    output, summary, pid_file = workdir / "ejecutado.ipynb", workdir / "summary.json", workdir / "kernel.pid"
    job = {
        "input": str(notebook),
        "output": str(output),
        "cwd": str(workdir),
        "cell_timeout": options.cell_timeout,
        "parameters": {"PROFILE": "smoke"},
        "max_output_bytes": options.max_output_bytes,
        "pid_file": str(pid_file),
        "summary": str(summary),
        "export_names": export,
        "export_path": str(workdir / "exports.pt"),
        "grader_pid": os.getpid(),
    }
    job_path = workdir / "execute.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    with open(workdir / "execute.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vitcourse.grading.execute", str(job_path)],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        timed_out = False
        try:
            process.wait(timeout=options.timeout)
        except subprocess.TimeoutExpired:
            kill_sessions(process, read_pid(pid_file))
            timed_out = True
    if summary.exists():
        return json.loads(summary.read_text(encoding="utf-8"))["cells"], timed_out, output
    if output.exists():  # killed: papermill saved the notebook after every cell
        import nbformat

        try:
            cells = summarise(nbformat.read(output, as_version=4))
        except Exception:  # noqa: BLE001 (a notebook half-written when the process was killed)
            return [], timed_out, None
        for cell in cells:
            if cell["status"] == "running":
                cell["status"] = "timeout" if timed_out else "error"
        return cells, timed_out, output
    return [], timed_out, None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m vitcourse.grading.execute JOB.json", file=sys.stderr)
        return 2
    run(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
