"""The MLflow UI as a student opens it: a tracked run's parameters and metric curves, in Chromium.

A small real run (a tiny ViT, a few hundred Fashion-MNIST images) is tracked by
``vitcourse.train.fit(..., mlflow=folder)`` into a SQLite store; ``mlflow ui`` (the full
package) serves it on 127.0.0.1 with one worker; Debian's Chromium opens the run. The
screenshots go to ``_build/screenshots/mlflow_*.png``. Needs no built book.
"""

from __future__ import annotations

import pytest

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.browser

PARAMS = {"model": "vit_pico_patch2_8", "dataset": "fashion_mnist_256"}


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    """A finished run in a fresh store: params, three epochs of metrics, artefacts."""
    pytest.importorskip("mlflow.server", reason="the MLflow UI needs the full mlflow package")
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from vitcourse.data import FashionMNIST
    from vitcourse.models import create_model
    from vitcourse.train import fit

    store = tmp_path_factory.mktemp("mlruns")
    images, labels = FashionMNIST("train", size=256).tensors()
    small = torch.nn.functional.avg_pool2d(images, 2)[..., :8, :8]  # (256, 1, 8, 8): seconds
    data = TensorDataset(small, labels)
    model = create_model("vit_pico_patch2_8")
    fit(
        model,
        DataLoader(data, batch_size=64, shuffle=True),
        DataLoader(data, batch_size=128),
        epochs=3,
        mlflow=store,
        experiment="curso-vit",
        run_name="corrida-de-prueba",
        params=PARAMS,
        quiet=True,
    )
    from vitcourse.course.mlflow_ui import find_run

    return store, find_run(store, "curso-vit")


@pytest.fixture(scope="module")
def ui(tracked_run):
    from vitcourse.course.mlflow_ui import serve

    store, _ = tracked_run
    with serve(store) as base:
        yield base


def test_run_params_and_curves_are_visible(ui, tracked_run, browser):
    from vitcourse.course import mlflow_ui

    _, run = tracked_run
    assert run.run_name == "corrida-de-prueba" and "val_accuracy" in run.metrics
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(mlflow_ui._UI_SETTINGS)
    page = context.new_page()
    try:
        page.goto(run.overview(ui))
        page.get_by_text("corrida-de-prueba").first.wait_for(timeout=90_000)
        page.get_by_text("Parameters").first.wait_for(timeout=30_000)
        for key, value in PARAMS.items():
            search = page.get_by_placeholder("Search parameters")
            search.fill(key)
            page.get_by_text(value, exact=True).first.wait_for(timeout=30_000)
        page.get_by_placeholder("Search metrics").fill("val_accuracy")
        page.get_by_text("val_accuracy", exact=True).first.wait_for(timeout=30_000)

        page.goto(run.charts(ui))
        page.locator(mlflow_ui.CHARTS).first.wait_for(timeout=90_000)
        page.get_by_placeholder("Search metric charts").fill("val_accuracy")
        page.get_by_text("val_accuracy", exact=True).first.wait_for(timeout=30_000)
        # Plotly draws after the data arrives, seconds later on a busy machine: wait for a line
        # with at least two points rather than a fixed time.
        page.wait_for_function(mlflow_ui._CURVE_DRAWN, timeout=90_000)
        curves = page.locator("svg.main-svg .scatterlayer .trace path.js-line").count()
        assert curves >= 1, "no metric curve drawn on the run's Model metrics tab"
    finally:
        context.close()


def test_screenshots_of_the_run(ui, tracked_run, browser):
    from vitcourse.course.mlflow_ui import screenshots

    _, run = tracked_run
    paths = screenshots(ui, run, SCREENSHOTS, prefix="mlflow", browser=browser)
    for name, path in paths.items():
        assert path.stat().st_size > 20_000, f"{name}: {path} looks empty"
