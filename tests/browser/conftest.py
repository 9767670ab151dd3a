"""Real-browser fixtures: a real Voila server and headless Debian Chromium driven by Playwright.

* ``voila_server``: one Voila server for the session (``workbench.ui.serve.voila_command``),
  serving an empty temporary notebooks folder with a temporary workspace as ``WORKBENCH_HOME``.
  Tests add notebooks with ``voila_server.add_notebook(name, *cells)``; Voila reads the folder
  at each request, so they appear without a restart. ``running_voila(home, notebooks, log,
  extra_env=...)`` starts another one, e.g. on the project's own ``notebooks/`` (``PROJECT_NOTEBOOKS``)
  as a given person (``{"WORKBENCH_USER": "analyst1"}``: the dashboards' user, see ``ui.session``).
* ``browser`` (session) and ``page`` (per test): Chromium from Debian, because Playwright's
  own browser download is not reachable here. Skipped with the reason when it is absent.
  Pages reach only this machine, as on an analyst's offline workstation.
* ``screenshot(step)``: saves ``tests/browser/artifacts/<test>/<step>.png`` for a person to look at;
  ``screenshot(step, full_page=False)`` saves only the window (1280x800), ``element=`` only a part of it.

Every test here is marked ``browser``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from workbench.ui.serve import DEFAULT_NOTEBOOKS, server_env, server_url, stop, voila_command, wait_until_ready

CHROMIUM = Path(os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium"))
# No sandbox: CI runs as root. The next flags stop Chromium calling home, which on a closed
# network stalls start-up and page loads. The resolver rule keeps pages on this machine, as on
# an analyst's offline workstation (Voila's template asks a CDN for Font Awesome); it costs
# nothing, where a Playwright route on every request added about a second per page.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PROJECT_NOTEBOOKS = DEFAULT_NOTEBOOKS  # the dashboards analysts use: notebooks/ of the project
SERVER_START_TIMEOUT = 120  # seconds; a cold start on 2 busy cores takes a few
PAGE_TIMEOUT_MS = 60_000  # a dashboard page waits for a fresh kernel to run its notebook


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives a real Voila server with headless Chromium")


def pytest_collection_modifyitems(items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


@dataclass
class VoilaServer:
    url: str
    home: Path
    notebooks: Path
    log: Path
    process: subprocess.Popen
    started_in: float  # seconds from launch to the first HTTP 200

    def render_url(self, name: str) -> str:
        """Where Voila runs notebook ``name`` of the served folder."""
        return f"{self.url}voila/render/{name}"

    def add_notebook(self, name: str, *cells: str) -> str:
        """Write a notebook of code cells into the served folder; returns its render URL."""
        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source) for source in cells],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        )
        nbformat.write(nb, self.notebooks / name)
        return self.render_url(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_voila(home: Path, notebooks: Path, log: Path, extra_env: dict[str, str] | None = None) -> Iterator[VoilaServer]:
    """Voila on a free port until the block ends; then its whole process group (kernels too) goes.

    ``extra_env`` reaches the server and its kernels (``WORKBENCH_USER``: who the dashboards act as).
    """
    port = free_port()
    env = server_env(home, {"JUPYTER_CONFIG_DIR": str(log.parent / "jupyter-config"), **(extra_env or {})})  # no stray user config
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            voila_command(notebooks, port=port), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = server_url("127.0.0.1", port)
    try:
        if not wait_until_ready(url, process, SERVER_START_TIMEOUT):
            state = f"exited with status {process.returncode}" if process.poll() is not None else "did not answer"
            pytest.fail(f"Voila {state} within {SERVER_START_TIMEOUT} s at {url}; its output:\n{log.read_text()[-4000:]}")
        yield VoilaServer(url, home, notebooks, log, process, time.monotonic() - started)
    finally:
        stop(process)
        try:
            os.killpg(process.pid, signal.SIGKILL)  # kernels Voila failed to shut down
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def voila_server(tmp_path_factory) -> Iterator[VoilaServer]:
    root = tmp_path_factory.mktemp("voila")
    (root / "home").mkdir()
    (root / "notebooks").mkdir()
    with running_voila(root / "home", root / "notebooks", root / "voila.log") as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set WORKBENCH_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    yield context.new_page()
    context.close()


#: tallest full-page picture, CSS pixels (a longer page is cut there).
FULL_PAGE_MAX_PX = 8000


def whole_page(page, path: Path) -> None:
    """Screenshot of the whole page, also when a panel scrolls instead of the document.

    Voila 0.5 scrolls its ``#rendered_cells`` panel, not the document, so Playwright's
    ``full_page`` sees only the window. The window is made as tall as the panel's content for
    the picture, then given back its size.
    """
    hidden = page.evaluate(
        """() => Math.max(0, ...[...document.querySelectorAll('*')]
            .filter(e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowY))
            .map(e => e.scrollHeight - e.clientHeight))"""
    )
    size = page.viewport_size
    if not hidden or size is None:
        page.screenshot(path=path, full_page=True)
        return
    page.set_viewport_size({"width": size["width"], "height": min(FULL_PAGE_MAX_PX, size["height"] + int(hidden))})
    try:
        page.wait_for_timeout(200)  # one layout pass at the new size
        page.screenshot(path=path, full_page=True)
    finally:
        page.set_viewport_size(size)


@pytest.fixture
def screenshot(page, request):
    """``screenshot("step")`` saves the full page as artifacts/<test>/<step>.png and returns the path.

    ``full_page=False``: only what the window shows; ``element``: only that locator's box.
    """
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)

    def save(step: str, *, full_page: bool = True, element=None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        # The page as it settles: an action's progress row is hidden a moment after its result
        # is shown, and a picture taken in between shows both.
        for task in page.locator(".wb-task").all():
            task.wait_for(state="hidden", timeout=30_000)
        path = folder / f"{step}.png"
        if element is not None:
            element.screenshot(path=path)
        elif full_page:
            whole_page(page, path)
        else:
            page.screenshot(path=path)
        return path

    return save
