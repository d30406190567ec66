"""Sphinx extension: the book serves its own JavaScript, so it works with no network at all.

What the pages need, where it comes from, and where it goes in the built HTML
(``_build/html/_static/vitcourse/``):

* **plotly.js**: the ``plotly.min.js`` inside the ``plotly`` Python package, the very
  version that wrote the figures. Added only to pages that have a figure; the figures
  themselves are written without it by ``vitcourse.runtime``'s ``"vitcourse"`` renderer.
* **MathJax 3** (``tex-svg``): npm package ``mathjax``, installed by ``make assets``
  (``npm ci`` on the committed ``package-lock.json``). SVG output, because plotly.js
  typesets LaTeX labels through MathJax's SVG output; Sphinx loads it on pages with math,
  and this extension also on pages whose figures have LaTeX labels.
* **the Jupyter widget manager**: npm package ``@jupyter-widgets/html-manager``, its
  ``dist/embed.js`` build, which needs no require.js. myst-nb adds it to pages whose
  notebook saved widget state.

sphinx-thebe's loader, which would fetch thebe from a CDN when a live-code button is
pressed, is dropped: the book has no such button (chapters run on Colab instead). The
theme starts in light mode (see :func:`use_local_assets`).
"""

from __future__ import annotations

import fnmatch
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

STATIC_DIR = "vitcourse"  # under _static/
PLOTLY_JS = f"{STATIC_DIR}/plotly/plotly.min.js"
MATHJAX_JS = f"{STATIC_DIR}/mathjax/tex-svg.js"
WIDGETS_JS = f"{STATIC_DIR}/html-manager/embed.js"

# MathJax's other entry points and its CHTML output are never loaded with tex-svg.
MATHJAX_SKIP = ("tex-chtml*.js", "tex-mml-*.js", "mml-*.js", "tex-svg-full.js", "node-main.js", "output/chtml*")
WIDGETS_SKIP = ("*.map", "embed-amd.js", "libembed-amd.js")

FIGURE_MARK = 'class="plotly-graph-div"'
# plotly.js typesets a text with MathJax when the whole string is "$...$".
LATEX_STRING = re.compile(r'"\$(?:[^"\\]|\\.)+\$"')


def _sources(app: Sphinx) -> list[tuple[Path, str, tuple[str, ...], tuple[str, ...]]]:
    """For each asset: source folder, folder under _static/vitcourse, patterns to copy, to skip."""
    import plotly

    node_modules = Path(app.srcdir) / "node_modules"
    mathjax = node_modules / "mathjax" / "es5"
    widgets = node_modules / "@jupyter-widgets" / "html-manager" / "dist"
    for folder, package in ((mathjax, "mathjax"), (widgets, "@jupyter-widgets/html-manager")):
        if not folder.is_dir():
            raise ExtensionError(
                f"the book serves {package} from {folder}, which does not exist. "
                "Install the book's JavaScript with `make assets` (runs `npm ci` on package-lock.json)."
            )
    plotly_js = Path(plotly.__file__).parent / "package_data"
    if not (plotly_js / "plotly.min.js").is_file():
        raise ExtensionError(f"the plotly Python package has no {plotly_js / 'plotly.min.js'}; reinstall plotly")
    return [
        (plotly_js, "plotly", ("plotly.min.js",), ()),
        (mathjax, "mathjax", ("*",), MATHJAX_SKIP),
        (widgets, "html-manager", ("*",), WIDGETS_SKIP),
    ]


def _copy_tree(source: Path, target: Path, only: tuple[str, ...], skip: tuple[str, ...]) -> None:
    """Copy the files of ``source`` matching ``only`` and not ``skip`` into ``target``, if changed."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_dir() or not any(fnmatch.fnmatch(relative, pattern) for pattern in only):
            continue
        if any(fnmatch.fnmatch(relative, pattern) for pattern in skip):
            continue
        destination = target / relative
        if destination.exists():
            old, new = destination.stat(), path.stat()
            if old.st_size == new.st_size and old.st_mtime >= new.st_mtime:
                continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def copy_assets(app: Sphinx) -> None:
    """Put plotly.js, MathJax and the widget manager under ``_static/vitcourse/``."""
    if app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static" / STATIC_DIR
    for source, name, only, skip in _sources(app):
        _copy_tree(source, static / name, only, skip)


def use_local_assets(app: Sphinx, config) -> None:
    """Point Sphinx's MathJax and myst-nb's widget manager at the local copies."""
    config.mathjax_path = MATHJAX_JS
    config.nb_ipywidgets_js = {WIDGETS_JS: {}}
    # The theme's colour mode. Left empty (the default), pydata-sphinx-theme logs a console
    # error on every page; light, because the figures are drawn for a white page.
    config.html_context.setdefault("default_mode", "light")


def mark_figures_with_latex(app: Sphinx, doctree: nodes.document) -> None:
    """Make Sphinx load MathJax on pages whose plotly figures have LaTeX labels."""
    for raw in doctree.findall(nodes.raw):
        text = raw.astext()
        if FIGURE_MARK in text and LATEX_STRING.search(text):
            app.env.get_domain("math").data["has_equations"][app.env.docname] = True
            return


def page_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Add plotly.js to pages with figures; drop sphinx-thebe's CDN loader from every page."""
    if FIGURE_MARK in context.get("body", ""):
        # Synchronous, before the body: any figure script may call Plotly.
        app.add_js_file(PLOTLY_JS, priority=400)
    scripts = context.get("script_files")
    if isinstance(scripts, list):
        scripts[:] = [js for js in scripts if not _is_thebe(js)]
    styles = context.get("css_files")
    if isinstance(styles, list):
        styles[:] = [css for css in styles if "thebe" not in str(getattr(css, "filename", css))]


def _is_thebe(js) -> bool:
    filename = str(getattr(js, "filename", js) or "")
    body = getattr(js, "attributes", {}).get("body", "")
    return "thebe" in filename or "THEBE_JS_URL" in body


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", use_local_assets, priority=900)
    app.connect("builder-inited", copy_assets)
    app.connect("doctree-read", mark_figures_with_latex)
    # Late, so that the scripts of every other extension are already in the list.
    app.connect("html-page-context", page_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
