"""Fixtures for the checks of the built book (`make test-browser`, after `make book`).

* ``site``: ``_build/html`` served on 127.0.0.1 by a thread of this process;
* ``browser``: Debian's Chromium driven by Playwright, every request to another host
  aborted and recorded, so a page that needs the network fails its test.

Every test module here is marked ``browser``. Without a built book they skip (say `make book`);
without Chromium the Chromium ones skip with the command that installs it, unless
``VITCOURSE_REQUIRE_BROWSER=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("VITCOURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = (
    "the browser tests need Debian's Chromium at {path} and Playwright for Python: "
    "`sudo apt-get install -y chromium` and `pip install playwright` (never `playwright install`, "
    "which downloads a browser of its own)."
)


def _is_redirect(page: Path) -> bool:
    # Jupyter Book writes index.html as a bare <meta http-equiv="Refresh"> to the root page.
    head = page.read_text(encoding="utf-8")[:500].lower()
    return "http-equiv=\"refresh\"" in head and "<html" not in head


def built_pages(redirects: bool = False) -> list[Path]:
    """The HTML pages of the built book (or its redirect stubs), relative to ``_build/html``."""
    if not BUILD.is_dir():
        return []
    return sorted(
        page.relative_to(BUILD)
        for page in BUILD.rglob("*.html")
        if not page.relative_to(BUILD).parts[0].startswith(("_static", "_sources", "_images"))
        and _is_redirect(page) == redirects
    )


@pytest.fixture(scope="session")
def build() -> Path:
    if not (BUILD / "index.html").exists():
        if os.environ.get("VITCOURSE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no built book in {BUILD}: `make test-browser` builds it first (make book)")
        pytest.skip(f"no built book in {BUILD}: run `make book` first")
    return BUILD


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the standard library's name)
        pass


@pytest.fixture(scope="session")
def site(build) -> str:
    """Base URL (``http://127.0.0.1:PORT/``) of the built book, served by a thread."""
    handler = functools.partial(_QuietHandler, directory=str(build))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, no background networking."""
    required = os.environ.get("VITCOURSE_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        message = INSTALL_HINT.format(path=CHROMIUM)
        if required:
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class PageLog:
    """What one page did: console errors, uncaught exceptions, failed and blocked requests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    in_flight: set[str] = field(default_factory=set)
    last_activity: float = field(default_factory=time.monotonic)

    def started(self, request) -> None:
        self.in_flight.add(request.url)
        self.last_activity = time.monotonic()

    def ended(self, request) -> None:
        self.in_flight.discard(request.url)
        self.last_activity = time.monotonic()

    def settle(self, page, quiet_s: float = 0.5, timeout_s: float = 15.0) -> None:
        """Wait until no request has been in flight for ``quiet_s`` (late loads get logged too)."""
        deadline = time.monotonic() + timeout_s
        while self.in_flight or time.monotonic() - self.last_activity < quiet_s:
            in_flight = sorted(self.in_flight)
            assert time.monotonic() < deadline, f"requests still in flight after {timeout_s} s: {in_flight}"
            page.wait_for_timeout(100)

    def problems(self) -> list[str]:
        return (
            [f"console error: {m}" for m in self.console_errors]
            + [f"uncaught exception: {m}" for m in self.page_errors]
            + [f"failed request: {m}" for m in self.failed]
            + [f"request to another host (blocked, the book must work offline): {m}" for m in self.blocked]
        )


@pytest.fixture
def open_page(browser, site):
    """``open_page(path) -> (page, log)``: load a page of the book with the network cut off."""
    local = urlsplit(site).netloc
    contexts = []

    def _open(path: str, wait_until: str = "load"):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="es-AR")
        contexts.append(context)
        log = PageLog()

        def only_local(route):
            if urlsplit(route.request.url).netloc == local:
                route.continue_()
            else:
                log.blocked.append(route.request.url)
                route.abort()

        context.route("**/*", only_local)
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and log.console_errors.append(message.text))
        page.on("pageerror", lambda error: log.page_errors.append(str(error)))

        def on_failed(request):
            if urlsplit(request.url).netloc == local:
                log.failed.append(f"{request.url} ({request.failure})")

        page.on("requestfailed", on_failed)
        page.on("request", log.started)
        page.on("requestfinished", log.ended)
        page.on("requestfailed", log.ended)
        page.on(
            "response",
            lambda response: response.status >= 400 and log.failed.append(f"{response.url} (HTTP {response.status})"),
        )
        response = page.goto(site + path, wait_until=wait_until)
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        return page, log

    yield _open
    for context in contexts:
        context.close()
