"""The built HTML, read as files: offline assets, language, links, alt texts, Colab and downloads.

These need the built book (``make book``) but no browser.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import urlopen

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup

from vitcourse.notebooks import find_pairs

from .conftest import BUILD, ROOT, built_pages

pytestmark = pytest.mark.browser

PAGES = built_pages()
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
# Pages built from a notebook: the chapters, the TPs, the front page.
NOTEBOOK_PAGES = sorted(
    path.relative_to(ROOT).with_suffix(".html")
    for path in find_pairs(ROOT)
    if (BUILD / path.relative_to(ROOT).with_suffix(".html")).exists()
)
CDN_HOSTS = re.compile(r"(cdn\.|unpkg\.com|jsdelivr|cdnjs|googleapis|plot\.ly|polyfill\.io|mathjax\.org)", re.I)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)  # http:, https:, mailto:, data:, //host
LOADED_LINKS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "manifest", "apple-touch-icon"}
PLOTLY_BUNDLE = "plotly.js v"  # the banner at the top of plotly.min.js
COLAB_URL = re.compile(r"^https://colab\.research\.google\.com/github/([^/]+)/([^/]+)/blob/([^/]+)/(.+)$")


def ids(pages):
    return [str(page) for page in pages]


@cache
def soup(page: Path) -> BeautifulSoup:
    return BeautifulSoup((BUILD / page).read_text(encoding="utf-8"), "html.parser")


@cache
def anchors(page: Path) -> frozenset[str]:
    document = soup(page)
    return frozenset(
        [tag["id"] for tag in document.find_all(id=True)]
        + [tag["name"] for tag in document.find_all("a", attrs={"name": True})]
    )


def main_content(page: Path):
    document = soup(page)
    return document.find("main") or document.body


def test_the_book_was_built(build):
    assert PAGES, f"no HTML pages in {build}"
    assert Path("search.html") in PAGES and Path("genindex.html") in PAGES
    assert NOTEBOOK_PAGES, "no page was built from a notebook"
    assert (build / "index.html").exists()
    chapters = [page for page in PAGES if re.match(r"book/\d\d_", page.as_posix())]
    assert chapters, "no chapter page (book/NN_*.html) was built"
    for page in chapters:
        assert page in NOTEBOOK_PAGES, f"{page} was not built from a notebook pair (.md + .ipynb): no Colab button"


@pytest.mark.parametrize("stub", built_pages(redirects=True), ids=ids(built_pages(redirects=True)))
def test_redirect_stubs_lead_to_a_page_of_the_book(stub):
    content = (BUILD / stub).read_text(encoding="utf-8")
    target = re.search(r'url=([^"\s]+)', content, re.I)
    assert target, f"{stub}: a refresh without url=: {content!r}"
    assert Path(target.group(1)) in PAGES, f"{stub} redirects to {target.group(1)}, which is not a page of the book"


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_scripts_styles_and_media_are_served_by_the_book(page):
    """No <script src>, <link href>, <img src>, ... points at another host, and no inline script names a CDN."""
    document = soup(page)
    remote = []
    for tag, attribute in (("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"),
                           ("source", "src"), ("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data")):
        for element in document.find_all(tag, attrs={attribute: True}):
            if tag == "link" and not LOADED_LINKS & set(element.get("rel", [])):
                continue  # rel=canonical, next, ...: a name, not a download
            url = element[attribute]
            if EXTERNAL.match(url) and not url.startswith("data:"):
                remote.append(f"<{tag} {attribute}={url!r}>")
    for script in document.find_all("script", src=False):
        for url in re.findall(r"https?://[^\s\"'<>)]+", script.get_text()):
            if CDN_HOSTS.search(url):
                remote.append(f"inline <script> loads {url}")
    assert not remote, f"{page} needs the network:\n" + "\n".join(remote)


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_every_page_is_spanish(page):
    assert soup(page).html.get("lang") == "es", f"{page}: <html lang> must be 'es' (language: es in _config.yml)"


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_figures_share_one_plotly_js(page):
    """Figures are written without plotly.js; a page with figures loads the shared copy from _static."""
    text = (BUILD / page).read_text(encoding="utf-8")
    assert PLOTLY_BUNDLE not in text, (
        f"{page} embeds plotly.js in a figure: the chapter must call vitcourse.runtime.setup() before "
        "showing figures (it selects the 'vitcourse' renderer) and PLOTLY_RENDERER must not be set; "
        "outputs cached before that renderer existed go with `make clean`"
    )
    scripts = [tag["src"] for tag in soup(page).find_all("script", src=True)]
    if 'class="plotly-graph-div"' in text:
        shared = "_static/vitcourse/plotly/plotly.min.js"
        assert any(shared in src for src in scripts), f"{page} has figures but does not load {shared}"
    else:
        assert not any("plotly" in src for src in scripts), f"{page} loads plotly.js without having a figure"


def _local_targets(page: Path):
    """(what, url) for every link and resource of the page that stays inside the book."""
    document = soup(page)
    for tag, attribute in (("a", "href"), ("link", "href"), ("script", "src"), ("img", "src"), ("source", "src")):
        for element in document.find_all(tag, attrs={attribute: True}):
            url = element[attribute]
            if url and not EXTERNAL.match(url):
                yield f"<{tag} {attribute}>", url


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_internal_links_and_anchors_resolve(page):
    """Every relative href/src names a file of the build, and every #fragment an id on its target page."""
    broken = []
    for what, url in _local_targets(page):
        parts = urlsplit(url)
        target = (BUILD / page).parent / unquote(parts.path) if parts.path else BUILD / page
        target = target.resolve()
        if target.is_dir():
            target = target / "index.html"
        if BUILD.resolve() not in target.parents or not target.exists():
            broken.append(f"{what} {url!r}: no file {target}")
            continue
        fragment = unquote(parts.fragment)
        if fragment and target.suffix == ".html" and fragment not in anchors(target.relative_to(BUILD.resolve())):
            broken.append(f"{what} {url!r}: no id {fragment!r} in {target.relative_to(BUILD.resolve())}")
    assert not broken, f"{page}:\n" + "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_images_have_alt_text_and_figures_captions(page):
    """Alt text says what an image shows (not its file name); every <figure> has a caption."""
    problems = []
    for image in main_content(page).find_all("img"):
        alt = (image.get("alt") or "").strip()
        src = image.get("src", "")
        looks_like_a_path = re.search(r"\.(png|jpe?g|svg|gif|webp)$", alt, re.I) or "/" in alt or alt == src
        if not alt or looks_like_a_path:
            problems.append(
                f"<img src={src!r}> has alt {alt!r}: describe the image, e.g. cell metadata "
                "`mystnb: {image: {alt: '...'}}` or a {glue:figure} with :alt:"
            )
    for figure in main_content(page).find_all("figure"):
        caption = figure.find("figcaption")
        if caption is None or not caption.get_text(strip=True):
            problems.append(f"<figure> without a caption: {str(figure)[:120]}...")
    assert not problems, f"{page}:\n" + "\n".join(problems)


def test_glossary_pairs_spanish_and_english_terms():
    page = Path("book/glosario.html")
    assert page in PAGES, "the glossary page (book/glosario.md) is not in the build"
    terms = {dt.get_text(" ", strip=True).rstrip("#¶").strip() for dt in soup(page).select("dl.glossary dt")}
    for spanish, english in (("atención", "attention"), ("incrustación", "embedding"), ("parche", "patch")):
        assert spanish in terms and english in terms, f"glossary lacks {spanish} / {english}: {sorted(terms)}"
    entries = soup(page).select("dl.glossary > dd")
    assert len(entries) >= 20, f"the glossary has only {len(entries)} entries"


def _git_tracked(path: str) -> bool | None:
    try:
        result = subprocess.run(
            ["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:  # no git: the existence check alone
        return None
    if result.returncode != 0 and "not a git repository" in result.stderr:
        return None
    return result.returncode == 0


@pytest.mark.parametrize("page", NOTEBOOK_PAGES, ids=ids(NOTEBOOK_PAGES))
def test_colab_button_opens_this_notebook_from_the_configured_repository(page):
    hrefs = [a["href"] for a in soup(page).find_all("a", href=True)]
    links = [href for href in hrefs if href.startswith("https://colab.research.google.com/")]
    assert len(links) == 1, f"{page}: expected one Colab launch button, found {links}"
    match = COLAB_URL.match(links[0])
    assert match, f"{page}: unexpected Colab URL {links[0]}"
    org, repo, branch, path = match.groups()
    url = CONFIG["repository"]["url"].rstrip("/")
    assert f"https://github.com/{org}/{repo}" == url, f"{page}: Colab opens {org}/{repo}, _config.yml names {url}"
    assert branch == CONFIG["repository"].get("branch", "main"), f"{page}: Colab opens branch {branch}"
    assert path.endswith(".ipynb"), f"{page}: Colab opens {path}, not a notebook (is the .ipynb twin missing?)"
    assert (ROOT / path).is_file(), f"{page}: Colab opens {path}, which does not exist in the repository"
    assert _git_tracked(path) in (True, None), f"{page}: Colab opens {path}, which is not committed"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES, ids=ids(NOTEBOOK_PAGES))
def test_download_button_gives_a_valid_notebook(page, site):
    links = [a["href"] for a in soup(page).select("a.btn-download-notebook-button")]
    assert len(links) == 1, f"{page}: expected one '.ipynb' download button, found {links}"
    url = site + posixpath.normpath(posixpath.join(Path(page).parent.as_posix(), links[0]))
    with urlopen(url) as response:  # served by the local test server
        notebook = nbformat.reads(response.read().decode("utf-8"), as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 2, f"{url}: fewer than two code cells"
    assert "colab-setup" in code[0].metadata.get("tags", []), f"{url}: the first code cell is not the set-up cell"
    assert "parameters" in code[1].metadata.get("tags", []), f"{url}: the second code cell is not the parameters cell"
