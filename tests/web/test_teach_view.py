"""Teach it (issue 19) in a real Chromium against a real server fine-tuning on MNIST.

The learner draws digits and labels them under the prediction (some as what they are, some as
another digit), sees them in the gallery with the model's reading of each, removes one, finds the
rest again after a reload, teaches the model in a few steps, and reads the result: each example
before and after, MNIST's test accuracy in words, the filters that moved. "Use this model" makes
the page's requests name the job's weights; a phone finds the same result after a reload, and
axe-core finds nothing serious on either. What the page shows is checked against what it sent.

CONVSCOPE_TEACH_SCREENSHOTS=/tmp/teach saves /tmp/teach-desktop.png and /tmp/teach-phone.png.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest

from tests.web.browser_kit import (
    DESKTOP,
    PHONE,
    App,
    Points,
    app_in,
    draw_and_wait,
    ellipse,
    polyline,
    require_browser,
    training_server,
    vertical_stroke,
)
from tests.web.test_a11y import serious_violations
from tests.web.test_train_view import JOB_TIMEOUT_MS, model_name, model_of

if TYPE_CHECKING:
    from playwright.sync_api import Browser, FilePayload, Page, Request

require_browser()

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("CONVSCOPE_TEACH_SCREENSHOTS")
SEVEN = polyline([(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)])
ELL = polyline([(0.38, 0.18), (0.38, 0.8), (0.68, 0.8)])
# (drawing, the label the learner gives it): three as what they are, three as something else
DRAWINGS: list[tuple[Points, int]] = [
    (vertical_stroke(), 1),
    (ellipse(), 0),
    (SEVEN, 7),
    (vertical_stroke(x=0.42), 4),
    (ellipse(rx=0.14, ry=0.3), 6),
    (ELL, 2),
]
REMOVED = 3  # the fourth example is taken out again


@pytest.fixture(scope="module")
def teach_url() -> Iterator[str]:
    """A server of its own that may train (the shared one serves every other browser test)."""
    with training_server("teaching fine-tunes on MNIST") as url:
        yield url


@pytest.fixture
def teach_app(browser: Browser, teach_url: str) -> Iterator[App]:
    with app_in(browser, teach_url, viewport=DESKTOP) as app:
        yield app


def gallery_labels(page: Page) -> list[str]:
    return page.get_by_test_id("teach-examples").locator(".te-label").all_inner_texts()


def wait_for_count(page: Page, n: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=teach-examples] li').length === n", arg=n
    )


def wait_for_readings(page: Page) -> None:
    """Every tile says how the model reads it (no "reading…" left): a digit, or "?" where the
    model finds the drawing like no digit, as the prediction panel shows it."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid=teach-examples] .te-read')]
            .every((r) => /[\\d?] [\\u2713\\u2717]/.test(r.textContent))"""
    )


def label_drawings(page: Page) -> list[str]:
    """Draw each digit, label it under the prediction; the page's reading of each."""
    readings = []
    for i, (points, label) in enumerate(DRAWINGS):
        page.get_by_test_id("clear").click()
        readings.append(draw_and_wait(page, points))
        page.get_by_test_id(f"teach-label-{label}").click()
        wait_for_count(page, i + 1)
        note = page.locator(".te-ask-note").inner_text()
        assert f"Added as a{'n' if label == 8 else ''} {label}" in note, note
    return readings


def posted(request: Request) -> dict[str, Any]:
    return dict(json.loads(request.post_data or "{}"))


def test_teach_it_from_the_page(browser: Browser, teach_app: App, teach_url: str) -> None:
    page = teach_app.page
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r))
    expect_disabled(page, "teach-label-3")  # nothing drawn: nothing to label

    readings = label_drawings(page)
    view = page.get_by_test_id("teach-view")
    view.scroll_into_view_if_needed()
    assert gallery_labels(page) == [str(label) for _, label in DRAWINGS]
    wait_for_readings(page)
    # the gallery's readings are the page's own readings of the same drawings
    tiles = page.get_by_test_id("teach-examples").locator(".te-read")
    for i, (_, label) in enumerate(DRAWINGS):
        text = tiles.nth(i).inner_text()
        mark = "\u2713" if readings[i] == str(label) else "\u2717"
        assert text.startswith(f"reads {readings[i]} {mark}"), (i, text, readings[i])
    assert sum(r == str(label) for r, (_, label) in zip(readings, DRAWINGS, strict=True)) >= 3

    # remove one by keyboard: focus moves on to the next tile's button
    remove = page.get_by_role(
        "button", name=f"Remove example {REMOVED + 1}, labelled {DRAWINGS[REMOVED][1]}"
    )
    remove.focus()
    page.keyboard.press("Enter")
    wait_for_count(page, len(DRAWINGS) - 1)
    kept = [label for i, (_, label) in enumerate(DRAWINGS) if i != REMOVED]
    assert gallery_labels(page) == [str(label) for label in kept]
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == f"Remove example {REMOVED + 1}, labelled {kept[REMOVED]}", focused

    # kept across a reload
    page.reload()
    wait_for_count(page, len(kept))
    assert gallery_labels(page) == [str(label) for label in kept]
    wait_for_readings(page)
    assert serious_violations(page, "the Teach view with examples") == []

    # teach, in a few steps: the request is the gallery's examples and the page's model
    page.select_option('.te-form select[name="steps"]', "20")
    with page.expect_request(lambda r: r.url.endswith("/api/v1/trainings")) as start:
        page.get_by_test_id("teach-start").click()
    body = posted(start.value)
    models = httpx.get(f"{teach_url}/api/v1/models", trust_env=False).json()
    default = next(m["name"] for m in models if m["default"])
    assert body["kind"] == "finetune"
    assert body["base_model"] == default
    assert body["steps"] == 20
    assert [e["label"] for e in body["examples"]] == kept
    assert all(e["image"].startswith("data:image/png;base64,") for e in body["examples"])

    result = page.get_by_test_id("teach-result")
    result.locator(".te-done").wait_for(timeout=JOB_TIMEOUT_MS)
    words = result.locator(".te-words").inner_text()
    assert f"of your {len(kept)} examples as you labelled them" in words, words
    assert "of MNIST\u2019s test digits, against" in words, words
    assert words.endswith("before."), words
    rows = result.locator("tbody tr")
    assert rows.count() == len(kept)
    assert rows.locator("td:nth-child(2)").all_inner_texts() == [str(label) for label in kept]
    for row in range(len(kept)):  # a reading before and after, each marked right or wrong
        for cell in (3, 4):
            text = rows.nth(row).locator(f"td:nth-child({cell})").inner_text()
            assert text[0].isdigit(), text
            assert "\u2713" in text or "\u2717" in text, text
    summary = page.locator("#te-summary").inner_text()
    assert "accuracy on your examples" in summary, summary
    figures = result.locator(".te-filters figure")
    figures.first.wait_for()
    assert 1 <= figures.count() <= 4
    assert figures.first.locator("canvas").count() == 2  # before and after
    response = start.value.response()
    assert response is not None
    assert response.status == 201
    job_id = str(response.json()["id"])
    assert "weights?encoding=base64&model=" + quote(f"training:{job_id}") in " ".join(
        r.url for r in requests
    ), "the filters after were not read from the job's weights"

    # a new drawing: the taught model's reading beside the page's own
    page.get_by_test_id("clear").click()
    draw_and_wait(page, vertical_stroke(x=0.55))
    taught = page.get_by_test_id("teach-taught")
    taught.filter(has_text="The taught model reads it as").wait_for()
    assert serious_violations(page, "the Teach view's result") == []
    if SHOTS:
        result.scroll_into_view_if_needed()
        page.screenshot(path=f"{SHOTS}-desktop.png")

    # use it: the whole page reads with the job's weights
    name = f"training:{job_id}"
    with page.expect_request(lambda r: r.url.endswith(f"/api/v1/model?model={quote(name)}")):
        page.get_by_test_id("teach-use").click()
    page.locator('[data-testid="teach-use"][aria-pressed="true"]').wait_for()
    assert model_name(page) == name
    with page.expect_request(lambda r: model_of(r) == name):
        page.get_by_test_id("clear").click()
        draw_and_wait(page, vertical_stroke())
    assert taught.inner_text() == ""  # (the taught model is the one in use)
    problems = {k: v for k, v in teach_app.watch.problems().items() if v}
    assert not problems, problems

    # a phone (375 px) finds the same job and examples after a reload of its own
    storage = {
        "convscope-training-job": job_id,
        "convscope-teach-job": page.evaluate("localStorage.getItem('convscope-teach-job')"),
        "convscope-teach-examples": page.evaluate(
            "localStorage.getItem('convscope-teach-examples')"
        ),
    }
    script = f"for (const [k, v] of Object.entries({json.dumps(storage)})) localStorage[k] = v;"
    with app_in(browser, teach_url, init_script=script, **PHONE) as phone:
        p = phone.page
        p.get_by_test_id("teach-result").locator(".te-done").wait_for(timeout=JOB_TIMEOUT_MS)
        p.get_by_test_id("teach-result").locator(".te-filters figure").first.wait_for()
        assert "of MNIST\u2019s test digits" in p.locator(".te-words").inner_text()
        width = p.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page is {width} px wide on a 375-px phone"
        assert serious_violations(p, "the Teach view on a phone") == []
        if SHOTS:
            p.get_by_test_id("teach-result").scroll_into_view_if_needed()
            p.screenshot(path=f"{SHOTS}-phone.png")


def expect_disabled(page: Page, testid: str) -> None:
    page.locator(f'[data-testid="{testid}"]:disabled').wait_for()


def json_file(name: str, body: Any) -> FilePayload:
    return {"name": name, "mimeType": "application/json", "buffer": json.dumps(body).encode()}


def test_examples_export_and_import(app: App) -> None:
    """Export downloads the examples as JSON; import reads them back, and refuses a bad file
    naming the bad item (the shared server: no training needed)."""
    page = app.page
    draw_and_wait(page, vertical_stroke())
    page.get_by_test_id("teach-label-1").click()
    wait_for_count(page, 1)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export as a file").click()
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert [e["label"] for e in exported["examples"]] == [1]

    bad = {"examples": [exported["examples"][0], {"label": 12, "image": "x"}]}
    files = page.locator(".te-import")
    files.set_input_files(files=[json_file("bad.json", bad)])
    note = page.locator(".te-note.error")
    note.wait_for()
    assert "Example 2 of 2" in note.inner_text()
    assert "0 to 9" in note.inner_text()
    wait_for_count(page, 1)  # nothing of a bad file is taken

    pixels = [[1.0 if 8 <= c <= 11 and 4 <= r <= 23 else 0.0 for c in range(28)] for r in range(28)]
    good = {"examples": [*exported["examples"], {"label": 7, "pixels": pixels}]}
    files.set_input_files(files=[json_file("good.json", good)])
    wait_for_count(page, 2)  # the drawing already there is not added twice
    assert gallery_labels(page) == ["1", "7"]
    assert "Imported 1 example" in page.locator(".te-note").inner_text()
    wait_for_readings(page)
