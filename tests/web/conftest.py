"""Fixtures for the real-browser tests: the app under uvicorn (one per session), Debian's
Chromium through Playwright's sync API (no pytest plugin) and one fresh page per test.

The helpers they use are in browser_kit.py; see its docstring for the environment variables.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from server.cli.local_server import local_server
from tests.web.browser_kit import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    HAVE_PLAYWRIGHT,
    PHONE,
    App,
    app_in,
    weights_file,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with local_server(weights_file()) as server:
        yield server.url


@pytest.fixture(scope="session")
def model_layers(server_url: str) -> list[dict[str, Any]]:
    """GET /api/v1/model's layers, straight from the server (not through the page)."""
    response = httpx.get(f"{server_url}/api/v1/model", timeout=10.0, trust_env=False)
    response.raise_for_status()
    return list(response.json()["layers"])


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not HAVE_PLAYWRIGHT:
        pytest.skip("playwright is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def app(browser: Browser, server_url: str) -> Iterator[App]:
    """A desktop-sized page (1400x1000) with the app loaded and idle."""
    with app_in(browser, server_url, viewport=DESKTOP) as app:
        yield app


@pytest.fixture
def phone_app(browser: Browser, server_url: str) -> Iterator[App]:
    """A phone-sized page (375x812, touch, mobile viewport meta honoured)."""
    with app_in(browser, server_url, **PHONE) as app:
        yield app
