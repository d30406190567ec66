"""Run one submitted notebook: its kernel confined, the runner outside.

``python -m vitcourse.grading.execute JOB.json`` is the *runner*: a process of the
grader (it runs none of the student's code) that executes a notebook with
:class:`nbclient.NotebookClient` in a kernel started inside the submission's sandbox
(:mod:`.isolation`; the kernel talks to the runner over Unix sockets in the sandbox's
folder, since it has no network). It writes the executed notebook and a JSON summary
(per cell: ran, failed with what, timed out) where the kernel can't reach them.
Compared with a plain ``nbclient`` run:

* the parameters cell gets ``PROFILE = "smoke"`` after it, as papermill would inject it;
* a cell that fails does not stop the run (later parts still run);
* a cell that runs past ``cell_timeout`` is interrupted and the run goes on; a cell that
  ignores the interrupt (the kernel does not answer within ``STUCK_GRACE`` seconds)
  stops the run; past the total ``timeout`` the current cell is interrupted and no other
  cell starts; either way the kernel (its whole sandbox) is killed;
* outputs stop being recorded past ``max_output_bytes`` (a notebook that prints
  megabytes can't fill the grader's memory or the instructor's disk);
* optionally, a last cell saves the values of named variables as plain data
  (:func:`vitcourse.grading.probes.to_wire`) for the parts that grade what the
  notebook produced.

:func:`run_notebook`, at the end, is the grader's side: it starts the runner and waits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

if TYPE_CHECKING:
    from .grader import GradeOptions

__all__ = ["EXPORT_TAG", "added_by_the_run", "export_variables", "main", "run_notebook", "summarise"]

EXPORT_TAG = "vitcourse-export"
INJECTED_TAG = "injected-parameters"
_ADDED_TAGS = (INJECTED_TAG, EXPORT_TAG, "papermill-error-cell-tag")
TIMEOUT_NAME = "CellTimeoutError"
KERNEL_NAME = "vitcourse-sandbox"
# Seconds an interrupted kernel has to answer again before the run is stopped.
STUCK_GRACE = 10.0


def added_by_the_run(cell) -> bool:
    """Whether the runner added ``cell`` (it is not the student's, and takes no position)."""
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


def inject_parameters(notebook: nbformat.NotebookNode, parameters: dict) -> None:
    """Add a cell setting ``parameters`` after the cell tagged ``parameters`` (first, if none)."""
    if not parameters:
        return
    source = "# Parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    position = next(
        (i + 1 for i, c in enumerate(notebook.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), 0
    )
    notebook.cells.insert(position, cell)


def _mark(cell, status: str, **extra) -> None:
    """Note on the cell itself (it is saved with the notebook) what happened to it."""
    cell.setdefault("metadata", {})["vitcourse"] = {"status": status, **extra}


class _OutOfTime(Exception):
    """The whole run passed its time: no other cell starts."""


class _Stuck(Exception):
    """The kernel ignored an interrupt: nothing else can run in it."""


async def _answers(client, seconds: float) -> bool:
    """Whether the kernel answers a request on its shell channel within ``seconds`` (it is not busy)."""
    from queue import Empty

    request = client.kernel_info()
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            reply = await client.get_shell_msg(timeout=left)
        except Empty:
            return False
        if reply.get("parent_header", {}).get("msg_id") == request:
            return True


def _client(notebook, kernel_manager, job: dict):
    """A notebook client that caps outputs and records what happened to each cell."""
    from nbclient import NotebookClient

    deadline = time.monotonic() + job["timeout"]
    limit = job["max_output_bytes"]

    class Client(NotebookClient):
        recorded = 0
        truncated = False
        current = None
        out_of_time = False
        stuck = False

        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if out is None or out.get("output_type") == "error":
                return out
            self.recorded += len(json.dumps(out, default=str))
            if self.recorded > limit:
                outs.remove(out)
                if not self.truncated:
                    self.truncated = True
                    note = f"[vitcourse: salidas cortadas; el notebook ya escribió más de {limit} bytes]\n"
                    outs.append(nbformat.v4.new_output("stream", name="stderr", text=note))
                return None
            return out

    def on_cell_start(cell, cell_index):
        if cell.cell_type != "code" or not cell.source.strip():
            return
        if time.monotonic() >= deadline:
            client.out_of_time = True
            raise _OutOfTime
        client.current = cell
        _mark(cell, "running")

    async def on_cell_executed(cell, cell_index, execute_reply):
        content = (execute_reply or {}).get("content", {})
        if content.get("status") == "error":
            if content.get("ename") == TIMEOUT_NAME:
                _mark(cell, "timeout")
                if time.monotonic() >= deadline - 0.5:
                    client.out_of_time = True
                elif not await _answers(client.kc, STUCK_GRACE):
                    client.stuck = True
                    raise _Stuck
            else:
                _mark(cell, "error", ename=content.get("ename", ""), evalue=str(content.get("evalue", ""))[:300])
        else:
            _mark(cell, "ok")
        client.current = None

    client = Client(
        notebook,
        km=kernel_manager,
        timeout_func=lambda cell: max(1.0, min(job["cell_timeout"], deadline - time.monotonic())),
        interrupt_on_timeout=True,
        error_on_timeout={"ename": TIMEOUT_NAME, "evalue": "la celda superó su tiempo", "traceback": []},
        allow_errors=True,
        raise_on_iopub_timeout=False,
        startup_timeout=120,
        shutdown_kernel="immediate",
        kernel_name=KERNEL_NAME,
        on_cell_start=on_cell_start,
        on_cell_executed=on_cell_executed,
    )
    return client


def _kernel_manager(job: dict):
    """A kernel manager whose kernel starts with ``job["kernel_command"]`` (the sandbox)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    folder = Path(job["workdir"]) / "kernelspec" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": job["kernel_command"],
        "display_name": "Python 3 (vitcourse sandbox)",
        "language": "python",
        # An interrupt travels as a message: a signal would hit the sandbox, not the kernel.
        "interrupt_mode": "message",
    }
    (folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    manager = AsyncKernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder.parent)]),
        transport="ipc",
        ip=str(Path(job["cwd"]) / ".kernel"),
    )
    manager.connection_file = str(Path(job["workdir"]) / "connection.json")
    return manager


def summarise(notebook: nbformat.NotebookNode) -> list[dict]:
    """Per code cell: its position in the submitted notebook (from 1), ``status`` and the error.

    ``status`` is ``ok``, ``error`` (with ``ename``, ``evalue``), ``timeout`` or
    ``not-run``. Cells the runner added are left out and don't count in the positions.
    """
    cells, position = [], 0
    for cell in notebook.cells:
        if added_by_the_run(cell):
            continue
        position += 1
        if cell.cell_type != "code":
            continue
        mark = cell.metadata.get("vitcourse", {})
        entry = {"cell": position, "status": mark.get("status", "not-run")}
        if entry["status"] == "running":  # the kernel died here
            entry.update(
                status="error", ename="KernelDied", evalue="el kernel se cerró en esta celda (¿exit()? ¿memoria?)"
            )
        elif entry["status"] == "error":
            entry.update(ename=mark.get("ename", ""), evalue=mark.get("evalue", ""))
        cells.append(entry)
    return cells


def _notes(cell) -> None:
    cell.setdefault("metadata", {}).pop("vitcourse", None)


def run(job: dict) -> dict:
    """Execute the notebook described by ``job`` (see :func:`run_notebook`); return the summary."""
    from nbclient.exceptions import DeadKernelError

    notebook = nbformat.read(job["input"], as_version=4)
    for cell in notebook.cells:
        _notes(cell)
    inject_parameters(notebook, job.get("parameters") or {})
    if job.get("export_names"):
        notebook.cells.append(_export_cell(job["export_names"], job["export_path"]))
    start = time.monotonic()
    client = _client(notebook, _kernel_manager(job), job)
    aborted = ""
    try:
        client.execute(cwd=job["cwd"])
    except (_OutOfTime, _Stuck):
        pass
    except DeadKernelError:
        if client.current is not None and client.out_of_time:
            _mark(client.current, "timeout")
    except Exception as error:  # noqa: BLE001 (the kernel did not start, or nbclient gave up: keep what ran)
        aborted = f"{type(error).__name__}: {error}"[:300]
    cells = summarise(notebook)
    if aborted:
        for cell in cells:
            if cell["status"] == "error" and cell.get("ename") == "KernelDied":
                cell.update(ename="KernelError", evalue=aborted)
    nbformat.write(notebook, job["output"])
    summary = {
        "seconds": round(time.monotonic() - start, 2),
        "cells": cells,
        "timed_out": client.out_of_time,
        "stuck": client.stuck,
        "truncated": client.truncated,
        "aborted": aborted,
    }
    Path(job["summary"]).write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return summary


# --------------------------------------------------------------------------- the grader's side


def runner_environment() -> dict[str, str]:
    """The runner's environment: the grader's, with this package importable first."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_notebook(
    workdir: Path,
    notebook: Path,
    options: GradeOptions,
    export: list[str],
    kernel_command: list[str],
) -> tuple[dict, Path | None]:
    """The grader's side: run the runner on ``notebook`` (in the sandbox folder beside it).

    Args:
        workdir: the submission's folder (the runner's files go here, out of the sandbox).
        notebook: the submission's copy, in the sandbox's writable folder.
        options: timeouts and the output cap.
        export: variables to save at the end (see :func:`export_variables`).
        kernel_command: the kernel's command line, confined (``{connection_file}``
            stands for the connection file).

    Returns:
        ``(summary, executed_path)``: the summary (``cells``, per cell; ``timed_out``, the
        whole run stopped for time; ``stuck``, stopped by a cell that ignored its
        interrupt; ``truncated``, outputs cut) and the executed notebook (``None`` if none
        was saved).
    """
    output, summary = workdir / "ejecutado.ipynb", workdir / "summary.json"
    cwd = notebook.parent
    job = {
        "input": str(notebook),
        "output": str(output),
        "summary": str(summary),
        "workdir": str(workdir),
        "cwd": str(cwd),
        "timeout": options.timeout,
        "cell_timeout": options.cell_timeout,
        "parameters": {"PROFILE": "smoke"},
        "max_output_bytes": options.max_output_bytes,
        "export_names": export,
        "export_path": str(cwd / "exports.pt"),
        "kernel_command": kernel_command,
    }
    job_path = workdir / "execute.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    with open(workdir / "execute.log", "wb") as log:
        # The runner is the grader's own code; it ends the run at the total timeout itself.
        # Should it hang, killing it kills the sandbox too (bubblewrap dies with its parent).
        process = subprocess.Popen(
            [sys.executable, "-m", "vitcourse.grading.execute", str(job_path)],
            cwd=workdir,
            env=runner_environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            process.wait(timeout=options.timeout + 120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if summary.exists():
        return json.loads(summary.read_text(encoding="utf-8")), output
    return {"cells": [], "timed_out": True, "truncated": False}, None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m vitcourse.grading.execute JOB.json", file=sys.stderr)
        return 2
    from .confine import PR_SET_PDEATHSIG, _prctl

    _prctl(PR_SET_PDEATHSIG, 9)  # the grader gone, the runner goes (and its sandbox with it)
    run(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
