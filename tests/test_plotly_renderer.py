"""The "vitcourse" plotly renderer: figures without plotly.js, for the offline book and live notebooks."""

import itertools
import re

import plotly.graph_objects as go
import plotly.io as pio
import pytest

import vitcourse.runtime as runtime
from vitcourse.runtime import PLOTLY_RENDERER, book_figure_bundle, setup


@pytest.fixture(autouse=True)
def _keep_plotly_default():
    default = pio.renderers.default
    yield
    pio.renderers.default = default


def _figure():
    return go.Figure(go.Heatmap(z=[[1, 2], [3, 4]]), layout_title_text="$\\sqrt{d_k}$")


def test_setup_selects_the_book_renderer_off_colab(monkeypatch):
    monkeypatch.delenv("PLOTLY_RENDERER", raising=False)
    monkeypatch.setattr(runtime, "on_colab", lambda: False)
    setup("smoke", 0)
    assert pio.renderers.default == PLOTLY_RENDERER


def test_setup_selects_colab_renderer_on_colab(monkeypatch):
    monkeypatch.delenv("PLOTLY_RENDERER", raising=False)
    monkeypatch.setattr(runtime, "on_colab", lambda: True)
    setup("smoke", 0)
    assert pio.renderers.default == "colab"


def test_an_explicit_plotly_renderer_wins(monkeypatch):
    monkeypatch.setenv("PLOTLY_RENDERER", "json")
    pio.renderers.default = "json"
    setup("smoke", 0)
    assert pio.renderers.default == "json"


def test_bundle_has_the_figure_data_and_html_without_plotly_js():
    fig = _figure()
    bundle = book_figure_bundle(fig.to_dict())
    assert set(bundle) == {"application/vnd.plotly.v1+json", "text/html"}
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["z"] == [[1, 2], [3, 4]]
    html = bundle["text/html"]
    assert len(html) < 20_000, "the HTML must not carry plotly.js (4.8 MB)"
    assert "<script src" not in html and "plotly.js v" not in html and "mathjax" not in html.lower()
    assert html.count("<script>") == 1 and "Plotly.newPlot(" in html
    # Drawn once the page is parsed (deferred MathJax is ready then), with a message if plotly.js is missing.
    assert "DOMContentLoaded" in html and 'typeof Plotly === "undefined"' in html
    div_id = re.search(r'<div id="([^"]+)" class="plotly-graph-div"', html).group(1)
    assert html.count(f'"{div_id}"') >= 3


def test_figure_shows_through_the_renderer(monkeypatch):
    monkeypatch.delenv("PLOTLY_RENDERER", raising=False)
    monkeypatch.setattr(runtime, "on_colab", lambda: False)
    setup("smoke", 0)
    bundle = _figure()._repr_mimebundle_()
    assert "application/vnd.plotly.v1+json" in bundle and "Plotly.newPlot(" in bundle["text/html"]


def test_div_ids_are_unique_within_a_run_and_repeat_across_reruns(monkeypatch):
    def run():
        monkeypatch.setattr(runtime, "_figure_counter", itertools.count(1))
        return [book_figure_bundle(_figure().to_dict())["text/html"] for _ in range(2)]

    first, second = run()
    assert first != second, "two identical figures on one page need distinct div ids"
    assert run() == [first, second], "a rerun of the same notebook must write the same HTML"
