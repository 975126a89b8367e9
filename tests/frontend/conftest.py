"""Browser-test fixtures: the real app on a loopback port over a toy bundle, and Debian's Chromium.

The server runs uvicorn in a thread of the test process (one process keeps the 2-core CI cheap);
Chromium is the system package, never a Playwright download.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path(os.environ.get("EXPLAINREC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving `create_app(settings)` in a background thread."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.base_url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.run, name="explainrec-ui-server", daemon=True)

    def start(self, timeout_s: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise RuntimeError("the test server exited during startup; see the log above")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the test server did not become ready within {timeout_s:.0f} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def toy_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.toy_shop import make_toy_bundle

    return make_toy_bundle(tmp_path_factory.mktemp("ui-bundles"), seed=0)


@pytest.fixture(scope="session")
def live_server(toy_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from backend.app import create_app
    from backend.settings import Settings

    workdir = tmp_path_factory.mktemp("ui-workdir")
    settings = Settings(
        workdir=workdir,
        bundle_dir=toy_bundle,
        explainer="template",
        demo_mode=True,
        frontend_dir=REPO / "frontend",
    )
    server = LiveServer(create_app(settings), _free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A fresh context (no cookies, no session storage) per test, failing on page errors."""
    context = browser.new_context(base_url=live_server.base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield new_page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """Save a PNG under test-artifacts/screenshots/ (for people to look at): the whole page, or
    just the viewport where a full phone page would be too tall to read."""

    def save(page: Any, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return save
