"""The Train view (issue 11) in a real Chromium against a real server training on MNIST.

A short job (1,000 images) started from the page: the chart and the kernels redraw as it learns,
the drawing's reading changes, the slider scrubs back to an early snapshot (with the keyboard),
"Use this model" names the job's weights, Stop cancels a second job, and axe-core finds nothing
serious on the view. What the page shows is checked against what it asked the server for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest

from server.cli.local_server import local_server
from tests.web.browser_kit import (
    DESKTOP,
    MAX_LAYOUT_SHIFT,
    App,
    app_in,
    draw_and_wait,
    require_browser,
    training_server,
    vertical_stroke,
    watch_shifts,
    weights_file,
)
from tests.web.test_a11y import serious_violations

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request

require_browser()

pytestmark = pytest.mark.browser

JOB_TIMEOUT_MS = 180_000  # a 1,000-image job, then the test set: loose, for 2 shared cores

# JS: every animation frame, note each distinct picture of the chart and the kernels (a 32-bit
# FNV-1a hash of their pixels) and each distinct reading of the drawing (the ten bars' labels),
# so a job faster than the test's polling still shows everything it drew
RECORD_JS = """
() => {
  const hash = (cv) => {
    const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
    let h = 2166136261;
    for (let i = 0; i < d.length; i++) h = Math.imul(h ^ d[i], 16777619);
    return h >>> 0;
  };
  const seen = (window.trainSeen = { chart: new Set(), kernels: new Set(), reading: new Set() });
  const tick = () => {
    seen.chart.add(hash(document.querySelector('[data-testid="train-chart"]')));
    const k = document.querySelector('[data-testid="train-kernels"] canvas');
    if (!k.hidden && k.width) seen.kernels.add(hash(k));
    const bars = [...document.querySelectorAll('.tr-read .prob')]
      .map((li) => li.getAttribute('aria-label')).join();
    if (!bars.includes('no reading')) seen.reading.add(bars);
    requestAnimationFrame(tick);
  };
  tick();
}
"""
SEEN_JS = "() => Object.fromEntries(Object.entries(window.trainSeen).map(([k, v]) => [k, v.size]))"


@pytest.fixture(scope="module")
def train_url() -> Iterator[str]:
    """A server of its own that may train (the shared one serves every other browser test)."""
    with training_server("the Train view trains on MNIST") as url:
        yield url


@pytest.fixture
def train_app(browser: Browser, train_url: str) -> Iterator[App]:
    with app_in(browser, train_url, viewport=DESKTOP) as app:
        yield app


def reading(page: Page) -> list[str]:
    """The ten bars of the view's reading, as their labels say them."""
    rows = page.locator(".tr-read .prob")
    return [str(rows.nth(d).get_attribute("aria-label")) for d in range(10)]


# JS: state.modelName, from the very module instance main.js loaded (any cache-busting query)
MODEL_NAME_JS = """
async () => {
  const url = performance.getEntriesByType('resource').map((e) => e.name)
    .find((n) => new URL(n).pathname.endsWith('/js/state.js')) || '/js/state.js';
  return (await import(url)).getState().modelName;
}
"""


def model_name(page: Page) -> str | None:
    name = page.evaluate(MODEL_NAME_JS)
    return None if name is None else str(name)


def model_of(request: Request) -> str | None:
    """The `model` a POST /api/v1/predict names (None for another request, or none named)."""
    if request.method != "POST" or not request.url.endswith("/api/v1/predict"):
        return None
    body: dict[str, Any] = json.loads(request.post_data or "{}")
    return body.get("model")


def asks_for(request: Request, prefix: str) -> bool:
    return (model_of(request) or "").startswith(prefix)


def test_train_from_the_page_and_scrub_through_it(train_app: App) -> None:
    page = train_app.page
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r))
    draw_and_wait(page, vertical_stroke())
    view = page.get_by_test_id("train-view")
    view.scroll_into_view_if_needed()
    page.evaluate(RECORD_JS)

    page.select_option('select[name="train_size"]', "1000")
    status = page.locator(".tr-status")
    with watch_shifts(page) as shifts:  # the view fills as the job runs: nothing may jump
        page.get_by_test_id("train-start").click()
        expect_disabled(page, "train-start")

        # the chart and the kernels redraw as it learns, and the in-training weights read the
        # drawing differently as they change
        page.wait_for_function(
            "() => trainSeen.chart.size >= 3 && trainSeen.kernels.size >= 2"
            " && trainSeen.reading.size >= 2",
            timeout=JOB_TIMEOUT_MS,
        )
        status.filter(has_text="Done").wait_for(timeout=JOB_TIMEOUT_MS)
    print(f"\nthe Train view during a job: {shifts.report()}")
    assert shifts.total < MAX_LAYOUT_SHIFT, shifts.report()
    print("\ndistinct pictures and readings during the job:", page.evaluate(SEEN_JS))
    assert "test digits right" in status.inner_text()
    summary = page.locator("#tr-summary").inner_text()
    assert "training loss" in summary, summary
    assert "validation accuracy" in summary, summary
    live = [str(model_of(r)) for r in requests if asks_for(r, "training:")]
    assert live, "the page never asked the job's weights to read the drawing"
    job_id = live[0].removeprefix("training:")

    # scrub to the first snapshot with the keyboard: the reading is the early network's
    end_reading = reading(page)
    slider = page.get_by_test_id("train-slider")
    expect_enabled(page, "train-slider")
    slider.focus()
    with page.expect_request(lambda r: asks_for(r, f"training:{job_id}@")) as early:
        page.keyboard.press("Home")
    step = int(model_of(early.value).rsplit("@", 1)[1])
    page.locator(".tr-note", has_text="At step").wait_for()
    page.wait_for_function(
        """old => [...document.querySelectorAll('.tr-read .prob')]
            .some((li, d) => li.getAttribute('aria-label') !== old[d])""",
        arg=end_reading,
    )
    assert f"step {step:,}" in str(slider.get_attribute("aria-valuetext"))
    with page.expect_request(lambda r: model_of(r) == f"training:{job_id}"):
        page.keyboard.press("End")  # back to the finished weights
    page.locator(".tr-note", has_text="With the weights of step").wait_for()

    # use this model on the whole page (its layers and model card come from the job), and back
    name = f"training:{job_id}"
    with page.expect_request(lambda r: r.url.endswith(f"/api/v1/model?model={quote(name)}")):
        page.get_by_test_id("use-model").click()
    page.locator('[data-testid="use-model"][aria-pressed="true"]').wait_for()
    assert model_name(page) == name
    page.get_by_role("button", name="Back to the shipped model").click()
    page.locator('[data-testid="use-model"][aria-pressed="false"]').wait_for()
    assert model_name(page) is None

    assert serious_violations(page, "the Train view after a training") == []

    # Stop: a longer job is cancelled, in words
    page.select_option('select[name="train_size"]', "60000")
    page.get_by_test_id("train-start").click()
    expect_enabled(page, "train-stop")
    page.get_by_test_id("train-stop").click()
    status.filter(has_text="Stopped").wait_for(timeout=JOB_TIMEOUT_MS)
    expect_enabled(page, "train-start")
    problems = {k: v for k, v in train_app.watch.problems().items() if v}
    assert not problems, problems


def expect_disabled(page: Page, testid: str) -> None:
    page.locator(f'[data-testid="{testid}"]:disabled').wait_for()


def expect_enabled(page: Page, testid: str) -> None:
    page.locator(f'[data-testid="{testid}"]:enabled').wait_for(timeout=JOB_TIMEOUT_MS)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"CONVSCOPE_TRAINING": "false"}, "Training is switched off on this server."),
        (
            {"CONVSCOPE_MNIST_DIR": "/nonexistent/mnist", "CONVSCOPE_MNIST_DOWNLOAD": "false"},
            "The server cannot train right now. MNIST is not in /nonexistent/mnist",
        ),
    ],
    ids=["disabled-403", "no-data-503"],
)
def test_a_refused_training_is_said_in_words(
    browser: Browser, env: dict[str, str], words: str
) -> None:
    with local_server(weights_file(), env=env) as server:
        phone = {"width": 375, "height": 812}
        with app_in(browser, server.url, viewport=phone, is_mobile=True) as app:
            app.page.get_by_test_id("train-start").click()
            status = app.page.locator(".tr-status.error")
            status.wait_for()
            assert words in status.inner_text()
            expect_enabled(app.page, "train-start")  # and one may try again


def test_a_waiting_job_says_how_many_are_ahead_and_a_reload_finds_it(browser: Browser) -> None:
    """One job trains at a time here; two other learners wait. The page's job waits behind
    them and says so, moves up when one leaves, is found again after a reload, and stops."""
    small = {"train_size": 1000}
    one_at_a_time = {"CONVSCOPE_MAX_TRAININGS": "1"}
    with training_server("training jobs need MNIST", **one_at_a_time) as server_url:
        url = f"{server_url}/api/v1/trainings"
        others = [
            httpx.post(url, json={"seed": 5}, headers={"X-Client-Id": "other-learner-1"}),
            httpx.post(url, json=small, headers={"X-Client-Id": "other-learner-2"}),
            httpx.post(url, json=small, headers={"X-Client-Id": "other-learner-3"}),
        ]
        assert [o.json()["queue_position"] for o in others] == [0, 1, 2]
        try:
            with app_in(browser, server_url, viewport=DESKTOP) as app:
                page = app.page
                page.get_by_test_id("train-start").click()
                status = page.get_by_test_id("train-status")
                expect_text(status, "2 jobs ahead of yours")
                expect_enabled(page, "train-stop")
                httpx.delete(f"{url}/{others[1].json()['id']}")  # one ahead leaves the line
                expect_text(status, "Waiting for a free trainer: 1 job ahead of yours.")
                page.reload()
                expect_text(page.get_by_test_id("train-status"), "1 job ahead of yours")
                expect_enabled(page, "train-stop")
                page.get_by_test_id("train-stop").click()
                expect_text(page.get_by_test_id("train-status"), "Stopped.")
        finally:
            for other in others:
                httpx.delete(f"{url}/{other.json()['id']}")


def expect_text(locator: Any, words: str, timeout_ms: int = 20_000) -> None:
    """Wait until the element's text holds `words`; fail saying what it held instead."""
    deadline = time.monotonic() + timeout_ms / 1000
    while words not in (text := locator.inner_text()):
        assert time.monotonic() < deadline, f"{words!r} never shown; it says {text!r}"
        time.sleep(0.1)
