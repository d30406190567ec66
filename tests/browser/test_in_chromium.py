"""Every page of the built book in Chromium, with the network cut off.

A page passes when it loads with no console error, no uncaught exception, no failed request
and no request to another host; its plotly figures are drawn (SVG with traces); its math is
typeset by MathJax; its saved widgets are rendered. The search page finds "atención" with
Sphinx's Spanish stemmer. A screenshot of every page built from a notebook goes to
``_build/screenshots/``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import BUILD, ROOT, SCREENSHOTS, built_pages

pytestmark = pytest.mark.browser

PAGES = built_pages()
NOTEBOOK_PAGES = {page for page in PAGES if (ROOT / page).with_suffix(".ipynb").exists()}
WAIT_MS = 20_000

# For each figure: plotly attached its data, drew the SVG layers and at least one trace.
FIGURES_DRAWN = """() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(gd => ({
    id: gd.id,
    traces: (gd._fullData || []).length,
    svg: gd.querySelectorAll('svg.main-svg').length,
    drawn: gd.querySelectorAll('g.trace, g.hm, .imagelayer image, g.slice, g.point, path.js-line').length,
    width: gd.getBoundingClientRect().width,
}))"""

# Every element Sphinx marked as math holds MathJax output (and no MathJax error).
MATH_TYPESET = """() => {
    const math = Array.from(document.querySelectorAll('.math'));
    return {
        math: math.length,
        typeset: math.filter(el => el.querySelector('mjx-container svg')).length,
        errors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
    };
}"""


def _screenshot_name(page: Path) -> str:
    return page.with_suffix("").as_posix().replace("/", "__") + ".png"


def _wait(page, log, script: str, what: str) -> None:
    """Wait for ``script`` to return something truthy; on time-out, fail saying what the page did."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(script, timeout=WAIT_MS)
    except PlaywrightTimeout:
        said = "\n".join(log.problems() or ["nothing"])
        pytest.fail(f"{what} within {WAIT_MS / 1000:.0f} s. The page said:\n{said}")


def _wait_for_figures(page, log, name: str) -> None:
    if not page.locator(".plotly-graph-div").count():
        return
    _wait(
        page,
        log,
        "() => Array.from(document.querySelectorAll('.plotly-graph-div'))"
        ".every(gd => gd.querySelector('svg.main-svg') && (gd._fullData || []).length)",
        f"{name}: plotly did not draw every figure",
    )
    for figure in page.evaluate(FIGURES_DRAWN):
        assert figure["traces"] > 0 and figure["svg"] > 0, f"{name}: figure {figure['id']} not drawn: {figure}"
        assert figure["drawn"] > 0, f"{name}: figure {figure['id']} has no trace in its SVG: {figure}"
        assert figure["width"] > 100, f"{name}: figure {figure['id']} is {figure['width']} px wide"


def _wait_for_math(page, log, name: str) -> None:
    if not page.locator(".math").count():
        return
    started = "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
    _wait(page, log, started, f"{name}: MathJax did not start")
    page.evaluate("() => MathJax.startup.promise")
    state = page.evaluate(MATH_TYPESET)
    assert state["typeset"] == state["math"] and not state["errors"], f"{name}: MathJax did not typeset: {state}"


def _wait_for_widgets(page, log, name: str) -> None:
    views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    if not views:
        return
    _wait(
        page,
        log,
        f"() => document.querySelectorAll('.jupyter-widgets').length >= {views}",
        f"{name}: the widget manager did not render {views} saved widget(s)",
    )


@pytest.mark.parametrize("path", PAGES, ids=[str(p) for p in PAGES])
def test_page_works_offline(open_page, path):
    name = path.as_posix()
    page, log = open_page(name)
    _wait_for_figures(page, log, name)
    _wait_for_math(page, log, name)
    _wait_for_widgets(page, log, name)
    # Anything loaded late (MathJax extensions, fonts, widget modules) is in the log too.
    log.settle(page)
    if path in NOTEBOOK_PAGES:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / _screenshot_name(path), full_page=True)
    assert not log.problems(), f"{name}:\n" + "\n".join(log.problems())


@pytest.mark.parametrize("query", ["atención", "atenciones"])
def test_search_finds_attention_with_the_spanish_stemmer(open_page, query):
    """Sphinx's search, Spanish index: "atenciones", a word the glossary never writes, finds it by its stem."""
    if query == "atenciones":
        assert query not in (BUILD / "book" / "glosario.html").read_text(encoding="utf-8").lower()
    page, log = open_page(f"search.html?q={query}")
    # searchtools.js writes the closing status line once the search is over.
    _wait(
        page,
        log,
        "() => (document.querySelector('#search-results .search-summary') || {}).textContent",
        f"the search for {query!r} did not finish",
    )
    results = page.eval_on_selector_all("#search-results ul.search li a", "links => links.map(a => a.href)")
    assert results, f"searching {query!r} found nothing"
    assert any("glosario" in url for url in results), f"searching {query!r} did not find the glossary: {results}"
    log.settle(page)
    assert not log.problems(), "\n".join(log.problems())


def _probe_page(body: str, head: str = "") -> str:
    return f"""<!DOCTYPE html><html lang="es"><head><meta charset="utf-8">{head}</head>
<body><main>{body}</main></body></html>"""


def test_widget_manager_renders_saved_widgets_offline(open_page, site):
    """The book's widget manager (no require.js, no CDN) draws a slider from saved widget state."""
    import ipywidgets
    from ipywidgets.embed import embed_data

    slider = ipywidgets.IntSlider(value=7, min=0, max=10, description="patch_size")
    data = embed_data(views=[slider])
    page_html = _probe_page(
        head=(
            '<script type="application/vnd.jupyter.widget-state+json">'
            + json.dumps(data["manager_state"])
            + '</script><script src="/_static/vitcourse/html-manager/embed.js"></script>'
        ),
        body=f'<script type="application/vnd.jupyter.widget-view+json">{json.dumps(data["view_specs"][0])}</script>',
    )
    page, log = open_page("book/intro.html")
    page.route("**/__widget_probe__.html", lambda route: route.fulfill(body=page_html, content_type="text/html"))
    page.goto(site + "__widget_probe__.html", wait_until="load")
    _wait(page, log, "() => document.querySelector('.widget-slider')", "the widget manager drew no slider")
    assert page.locator(".widget-readout").first.inner_text().strip() == "7"
    assert "patch_size" in page.locator(".widget-label").first.inner_text()
    log.settle(page)
    assert not log.problems(), "\n".join(log.problems())


def _mathjax_config() -> str:
    """The MathJax configuration script Sphinx and MyST write into the book's pages."""
    for page in PAGES:
        match = re.search(r"<script>(window\.MathJax = .*?)</script>", (BUILD / page).read_text(encoding="utf-8"))
        if match:
            return match.group(1)
    return "window.MathJax = {}"


def test_plotly_figure_with_latex_labels_renders_offline(open_page, site):
    """A figure from vitcourse's renderer, LaTeX labels included, with the book's plotly.js and MathJax."""
    import plotly.graph_objects as go

    from vitcourse.runtime import book_figure_bundle

    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[0, 1, 4], name="$x^2$"))
    fig.update_layout(title="$\\operatorname{softmax}(QK^\\top/\\sqrt{d_k})$", xaxis_title="$d_k$", height=360)
    html = book_figure_bundle(fig.to_dict())["text/html"]
    head = (
        f"<script>{_mathjax_config()}</script>"
        '<script defer src="/_static/vitcourse/mathjax/tex-svg.js"></script>'
        '<script src="/_static/vitcourse/plotly/plotly.min.js"></script>'
    )
    page_html = _probe_page(head=head, body=html)
    page, log = open_page("book/intro.html")
    page.route("**/__figure_probe__.html", lambda route: route.fulfill(body=page_html, content_type="text/html"))
    page.goto(site + "__figure_probe__.html", wait_until="load")
    _wait_for_figures(page, log, "figure probe")
    _wait(
        page,
        log,
        "() => document.querySelectorAll('.plotly-graph-div .g-gtitle svg, .plotly-graph-div .g-xtitle svg')"
        ".length >= 2",
        "MathJax did not typeset the figure's LaTeX title and axis title",
    )
    log.settle(page)
    assert not log.problems(), "\n".join(log.problems())
