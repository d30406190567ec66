"""The MLflow UI as students use it: started on a local store, opened in a browser.

:func:`serve` starts ``mlflow ui`` (the full ``mlflow`` package; the skinny client has
no UI) on ``127.0.0.1`` with one worker, waits until it answers, and stops it (by its
process id) when the block ends. :func:`screenshots` opens a run in Chromium through
Playwright and saves what a student sees: the run's page (parameters and metrics) and
its metric curves. The chapter's figure comes from this command, not from a hand-made
capture::

    python -m vitcourse.course.mlflow_ui examples/proyecto-fashion-vit/mlruns \\
        --out examples/proyecto-fashion-vit/reports/figures

Chromium is Debian's (``/usr/bin/chromium``, or ``$VITCOURSE_CHROMIUM``); Playwright
drives it and never downloads a browser of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CHROMIUM", "RunPages", "find_run", "screenshots", "serve"]

CHROMIUM = os.environ.get("VITCOURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def store_uri(store: str | Path) -> str:
    """A store folder (with ``mlflow.db`` inside, as :mod:`vitcourse.train.tracking` makes it) or a URI."""
    text = str(store)
    if "://" in text or text.startswith("sqlite:"):
        return text
    database = Path(store).resolve() / "mlflow.db"
    if not database.exists():
        raise FileNotFoundError(f"no MLflow store at {database}: train with mlflow=... first (make train)")
    return f"sqlite:///{database}"


@contextlib.contextmanager
def serve(store: str | Path, port: int | None = None, timeout: float = 240.0) -> Iterator[str]:
    """Run ``mlflow ui`` on a store for the duration of the block.

    Args:
        store: a store folder or a tracking URI (``sqlite:///...``).
        port: the port (default: a free one).
        timeout: seconds to wait for the server to answer ``/health``.

    Yields:
        The UI's base URL, ``http://127.0.0.1:PORT``.

    Raises:
        RuntimeError: the server exited or did not answer in time (its output is in the message).
    """
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", store_uri(store),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with open(Path(os.environ.get("TMPDIR", "/tmp")) / f"mlflow-ui-{port}.log", "w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_healthy(url, server, timeout, output.name)
            yield url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)  # the server and the worker it started
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float, log_path: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow ui exited with {server.returncode}: {Path(log_path).read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1.0)
    raise RuntimeError(f"mlflow ui did not answer within {timeout:.0f} s: {Path(log_path).read_text()[-2000:]}")


@dataclass(frozen=True)
class RunPages:
    """Where one run lives in the UI."""

    experiment_id: str
    run_id: str
    run_name: str
    metrics: tuple[str, ...]
    params: dict[str, str]

    def overview(self, base: str) -> str:
        return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def charts(self, base: str) -> str:
        return f"{self.overview(base)}/model-metrics"

    def compare(self, base: str) -> str:
        return f"{base}/#/experiments/{self.experiment_id}/runs?compareRunsMode=CHART"


def find_run(store: str | Path, experiment: str | None = None, run_id: str | None = None) -> RunPages:
    """The run to show: ``run_id``, else the newest finished run (of ``experiment``, if given)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store_uri(store))
    if run_id is None:
        experiments = client.search_experiments()
        if experiment is not None:
            experiments = [e for e in experiments if e.name == experiment]
        ids = [e.experiment_id for e in experiments]
        runs = client.search_runs(
            ids, filter_string="attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"], max_results=1
        )
        if not runs:
            raise LookupError(f"no finished run in {store} (experiment {experiment!r})")
        run = runs[0]
    else:
        run = client.get_run(run_id)
    return RunPages(
        run.info.experiment_id,
        run.info.run_id,
        run.info.run_name,
        tuple(sorted(run.data.metrics)),
        dict(run.data.params),
    )


def _wait_text(page, text: str, timeout_ms: int) -> None:
    page.get_by_text(text, exact=False).first.wait_for(timeout=timeout_ms)


# The UI opens in its "GenAI" view with an assistant panel; a student training a model
# picks "Model training" once and closes the panel: the same, set before the page loads.
_UI_SETTINGS = """
window.localStorage.setItem("mlflow.workflowType_v1", '"machine_learning"');
window.localStorage.setItem("mlflow.assistant.panelOpen_v1", "false");
window.localStorage.setItem("mlflow.assistant.fab.autoOpenedOnFirstLoad_v1", "true");
"""
# A metric curve is drawn: a plotly line path with at least two points.
_CURVE_DRAWN = """() => Array.from(document.querySelectorAll('path.js-line'))
    .some(path => (path.getAttribute('d') || '').includes('L'))"""
_TOP = {"x": 0, "y": 0, "width": 1400, "height": 640}  # the charts' first row, without the empty rest
CHARTS = "canvas, svg.main-svg, .js-plotly-plot, [data-testid*=chart]"


def _filter_charts(page, text: str) -> None:
    search = page.get_by_placeholder("Search metric charts")
    if search.count():
        search.first.fill(text)


def screenshots(
    base: str,
    run: RunPages,
    out_dir: str | Path,
    prefix: str = "mlflow",
    browser=None,
    timeout_ms: int = 90_000,
    metric_filter: str = "val_accuracy",
) -> dict[str, Path]:
    """Open the run in Chromium and save its pages as PNG.

    Args:
        base: the UI's URL (:func:`serve`).
        run: the run (:func:`find_run`).
        out_dir: where the PNGs go.
        prefix: file name prefix.
        browser: a Playwright browser to reuse (default: launch Debian's Chromium).
        timeout_ms: how long to wait for each page's content.
        metric_filter: which metric charts to show (typed in the UI's chart search).

    Returns:
        ``{"run": path, "charts": path, "runs": path}``: the run's page (parameters and
        metrics), its metric curves, and the curves of every run of the experiment.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    with contextlib.ExitStack() as stack:
        if browser is None:
            from playwright.sync_api import sync_playwright

            playwright = stack.enter_context(sync_playwright())
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            stack.callback(browser.close)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
        stack.callback(context.close)
        context.add_init_script(_UI_SETTINGS)
        page = context.new_page()

        page.goto(run.overview(base))
        _wait_text(page, run.run_name, timeout_ms)
        _wait_text(page, "Parameters", timeout_ms)
        page.wait_for_timeout(1500)  # the UI keeps polling: there is no "network idle"
        paths["run"] = out_dir / f"{prefix}_run.png"
        page.screenshot(path=str(paths["run"]), full_page=True)

        page.goto(run.charts(base))
        page.locator(CHARTS).first.wait_for(timeout=timeout_ms)
        _filter_charts(page, metric_filter)
        page.wait_for_function(_CURVE_DRAWN, timeout=timeout_ms)
        page.wait_for_timeout(2500)  # the other charts finish drawing
        paths["charts"] = out_dir / f"{prefix}_charts.png"
        page.screenshot(path=str(paths["charts"]), clip=_TOP)

        page.goto(run.compare(base))
        page.locator(CHARTS).first.wait_for(timeout=timeout_ms)
        _filter_charts(page, metric_filter)
        page.wait_for_function(_CURVE_DRAWN, timeout=timeout_ms)
        page.wait_for_timeout(2500)
        paths["runs"] = out_dir / f"{prefix}_runs.png"
        page.screenshot(path=str(paths["runs"]), clip=_TOP)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshots of a run in the MLflow UI (Chromium).")
    parser.add_argument("store", help="the store folder (with mlflow.db) or a tracking URI")
    parser.add_argument("--out", required=True, help="folder for the PNG files")
    parser.add_argument("--experiment", help="the experiment (default: any)")
    parser.add_argument("--run-id", help="the run (default: the newest finished one)")
    parser.add_argument("--prefix", default="mlflow", help="file name prefix (default: mlflow)")
    args = parser.parse_args(argv)
    run = find_run(args.store, args.experiment, args.run_id)
    with serve(args.store) as base:
        paths = screenshots(base, run, args.out, args.prefix)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
