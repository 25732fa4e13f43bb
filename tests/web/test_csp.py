"""The Content-Security-Policy in a real Chromium: the page and /docs do everything they do
with no policy violation (each is reported to a securitypolicyviolation listener that the
page cannot skip: it is installed before any of the page's own scripts run)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.web.browser_kit import (
    CSP_LISTENER,
    DESKTOP,
    TIMEOUT_MS,
    App,
    Watch,
    csp_violations,
    draw_and_wait,
    ellipse,
    map_point,
    open_app,
    require_browser,
    vertical_stroke,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

require_browser()

pytestmark = pytest.mark.browser


@pytest.fixture
def watched(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(CSP_LISTENER)
    try:
        yield context
    finally:
        context.close()


def test_the_listener_catches_a_violation(watched: BrowserContext, server_url: str) -> None:
    # the check below is only worth something if a blocked inline script is reported
    page = watched.new_page()
    page.goto(server_url + "/")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__ran = true'; document.head.append(s); }"
    )
    page.wait_for_function("window.__violations.length > 0", timeout=TIMEOUT_MS)
    assert page.evaluate("window.__ran === undefined")
    assert any(v.startswith("script-src") for v in csp_violations(page)), csp_violations(page)


def test_the_page_is_served_under_the_policy(watched: BrowserContext, server_url: str) -> None:
    page = watched.new_page()
    response = page.goto(server_url + "/")
    assert response is not None
    headers: dict[str, Any] = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_a_session_on_the_page_breaks_no_policy(watched: BrowserContext, server_url: str) -> None:
    app: App = open_app(watched, server_url)
    page = app.page
    assert draw_and_wait(page, vertical_stroke()) == "1"
    page.get_by_label("Show saliency").check()  # the saliency overlay: a canvas over a canvas
    page.locator('[data-testid="input-view"] .saliency-canvas:not([hidden])').wait_for()
    # the detail dialog, its kernel grid painted with inline style properties
    page.mouse.click(*map_point(page, "conv1", 0))
    page.locator("dialog#detail[open] .kernel-grid").wait_for()
    page.keyboard.press("Escape")
    page.locator("dialog#detail[open]").wait_for(state="detached")
    assert draw_and_wait(page, ellipse()) == "0"
    page.get_by_test_id("upload").set_input_files(  # a dropped file is shown through a blob: URL
        {"name": "one.png", "mimeType": "image/png", "buffer": page_png(page)}
    )
    page.locator(".pad-badge:not([hidden])").wait_for()
    page.locator('main[data-state="ready"]').wait_for(state="attached")
    assert csp_violations(page) == []
    problems = {k: v for k, v in app.watch.problems().items() if v}
    assert not problems, problems


def page_png(page: Page) -> bytes:
    """The pad as a PNG, read back in the page (canvas.toDataURL, allowed as a data: image)."""
    data_url = page.get_by_test_id("pad").evaluate("cv => cv.toDataURL('image/png')")
    return base64.b64decode(str(data_url).split(",", 1)[1])


def test_the_api_docs_render_and_call_the_api_under_their_policy(
    watched: BrowserContext, server_url: str
) -> None:
    page = watched.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    watch = Watch(origin=server_url)
    watch.attach(page)
    response = page.goto(server_url + "/docs")
    assert response is not None
    assert "'sha256-" in response.headers["content-security-policy"]
    health = page.locator(".opblock", has_text="/healthz")
    health.locator(".opblock-summary").click()
    health.get_by_role("button", name="Try it out").click()
    health.get_by_role("button", name="Execute").click()
    health.locator(".live-responses-table .response-col_status", has_text="200").wait_for()
    assert page.locator(".opblock").count() >= 6  # every route of the contract is listed
    assert csp_violations(page) == []
    problems = {k: v for k, v in watch.problems().items() if v}
    assert not problems, problems
