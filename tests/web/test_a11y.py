"""Accessibility and words for learners, in a real Chromium against the real server.

axe-core (npm, pinned in package.json; `npm ci` puts it in node_modules/) checks the page with a
drawing, the detail dialog scrolled through, and a 375x812 phone. The rest checks what axe cannot:
nothing covers the model card, the answer is on screen, the keyboard can draw and never loses
focus or the drawing, and touch screens are told to tap rather than hover.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest

from tests.web.browser_kit import (
    ROOT,
    App,
    app_in,
    draw_and_wait,
    draw_touch,
    in_ci,
    map_point,
    require_browser,
    strokes_measured,
    vertical_stroke,
    wait_for_views,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

require_browser()

pytestmark = pytest.mark.browser

AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")

# ---- helpers -------------------------------------------------------------------------------


def axe_source() -> str:
    if not AXE_JS.is_file():
        reason = f"axe-core is not installed ({AXE_JS} is missing): run `npm ci` in {ROOT}"
        if in_ci():  # .ci/run installs it: a silent skip there would hide a broken install
            pytest.fail(f"{reason} (CI=true, so this is an error, not a skip)", pytrace=False)
        pytest.skip(reason)
    return AXE_JS.read_text(encoding="utf-8")


AXE_RUN_JS = """
async () => {
  const r = await axe.run(document, { resultTypes: ['violations'] });
  return r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary),
  }));
}
"""


def serious_violations(page: Page, where: str) -> list[str]:
    """axe's serious and critical findings on the page as it is now, one line each."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source())  # through DevTools: a strict CSP does not block it
    found = page.evaluate(AXE_RUN_JS)
    return [
        f"{where}: {v['impact']} {v['id']} ({v['help']}): {v['nodes']}"
        for v in found
        if v["impact"] in SERIOUS
    ]


# the module URL main.js loaded (with any cache-busting query), so this is the same instance
OPEN_DETAIL_JS = """
async ([name, unit]) => {
  const url = (file) => performance.getEntriesByType('resource').map((e) => e.name)
    .find((n) => new URL(n).pathname.endsWith('/js/' + file)) || '/js/' + file;
  const state = await import(url('state.js'));
  const detail = await import(url('views/detail/dialog.js'));
  state.setState({ detail: { name, channel: unit } });
  detail.open(document.querySelector('#detail'));
}
"""


def open_detail(page: Page, name: str, unit: int) -> None:
    """Open the detail dialog the way main.js's onOpen does: the state change, then open()."""
    page.evaluate(OPEN_DETAIL_JS, [name, unit])
    page.locator("dialog#detail[open]").wait_for()


def title(page: Page) -> str:
    return page.locator("#detail-title").inner_text()


def pad_has_ink(page: Page) -> bool:
    return bool(
        page.get_by_test_id("pad").evaluate(
            "cv => cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data"
            ".some((v, i) => i % 4 === 0 && v > 128)"
        )
    )


def in_viewport(page: Page, selector: str) -> bool:
    """Whether the element's box lies inside the window (and it is displayed)."""
    return bool(
        page.locator(selector).evaluate(
            "el => { const r = el.getBoundingClientRect();"
            " return r.width > 0 && r.top >= 0 && r.left >= 0"
            " && r.bottom <= innerHeight && r.right <= innerWidth; }"
        )
    )


@pytest.fixture
def laptop_app(browser: Browser, server_url: str) -> Iterator[App]:
    """A 1280x800 window: a common laptop screen."""
    with app_in(browser, server_url, viewport={"width": 1280, "height": 800}) as app:
        yield app


def draw_with_finger(app: App) -> str:
    before = strokes_measured(app.page)
    draw_touch(app.page, vertical_stroke())
    wait_for_views(app.page, before)
    return app.page.get_by_test_id("prediction").inner_text()


# ---- axe -----------------------------------------------------------------------------------


def add_example(page: Page, label: int) -> None:
    """Label the drawing under the prediction, so the Teach view's gallery has a tile."""
    page.get_by_test_id(f"teach-label-{label}").click()
    page.get_by_test_id("teach-examples").locator("li .te-read", has_text="reads").first.wait_for()
    page.get_by_test_id("teach-view").scroll_into_view_if_needed()


def atlas_digits(page: Page, testid: str, count: int) -> None:
    """Wait until an atlas view (neighbors, channel-examples, confusion-digits) shows `count`
    digit buttons."""
    page.get_by_test_id(testid).locator(".digit-btn[data-n]").nth(count - 1).wait_for()


def open_confusion_cell(page: Page, truth: int, predicted: int) -> None:
    cell = page.get_by_test_id(f"confusion-cell-{truth}-{predicted}")
    cell.scroll_into_view_if_needed()
    cell.click()
    page.get_by_test_id("confusion-digits").locator(".digit-btn[data-n]").first.wait_for()


def test_axe_page_with_a_drawing(app: App) -> None:
    assert draw_and_wait(app.page, vertical_stroke()) == "1"
    atlas_digits(app.page, "neighbors", 8)  # where the drawing sits, with its neighbours
    assert serious_violations(app.page, "desktop page") == []
    app.page.get_by_test_id("embedding-map").locator(".emb-stage").focus()
    app.page.keyboard.press("ArrowRight")  # a dot read out, its tip shown
    app.page.get_by_test_id("embedding-map").locator(".emb-key").nth(4).click()  # the 4s picked
    open_confusion_cell(app.page, 4, 9)
    app.page.locator(".ci-p", has_text="sure").first.wait_for()  # the class inputs
    assert serious_violations(app.page, "desktop page, the atlas's views") == []
    add_example(app.page, 7)  # the Teach view with an example (its result: test_teach_view.py)
    assert serious_violations(app.page, "desktop page, Teach view") == []


SCROLL_DIALOG_JS = """
(step) => {
  const d = document.querySelector('dialog#detail');
  const before = d.scrollTop;
  d.scrollTop = before + step * d.clientHeight;
  return d.scrollTop > before;
}
"""


def axe_through_dialog(page: Page, where: str) -> list[str]:
    """axe at the top of the open dialog and after each screenful of scrolling."""
    found = serious_violations(page, f"{where}, top")
    for i in range(1, 12):
        if not page.evaluate(SCROLL_DIALOG_JS, 0.9):
            break
        found += serious_violations(page, f"{where}, scrolled {i}")
    return found


def test_axe_detail_dialog_scrolled_through(app: App) -> None:
    page = app.page
    assert draw_and_wait(page, vertical_stroke()) == "1"
    found = []
    # a conv map: the kernel's numbers on coloured cells were the failing case
    page.mouse.click(*map_point(page, "conv1", 0))
    page.locator("dialog#detail[open] .kernel-grid").wait_for()
    atlas_digits(page, "channel-examples", 9)  # what the filter looks for
    found += axe_through_dialog(page, "conv1 dialog")
    page.keyboard.press("Escape")
    page.locator("dialog#detail[open]").wait_for(state="detached")
    page.mouse.click(*map_point(page, "pool1", 0))
    page.get_by_test_id("pool-overlay").wait_for()
    atlas_digits(page, "channel-examples", 9)
    found += axe_through_dialog(page, "pool1 dialog")
    page.keyboard.press("Escape")
    # a dense unit: its weight table on coloured cells
    open_detail(page, "fc1", 3)
    page.locator("dialog#detail[open] table.weights tbody tr").first.wait_for()
    found += axe_through_dialog(page, "fc1 dialog")
    assert found == []


def test_axe_phone(phone_app: App) -> None:
    page = phone_app.page
    assert draw_with_finger(phone_app) == "1"
    found = serious_violations(page, "phone page")
    add_example(page, 1)
    found += serious_violations(page, "phone page, Teach view")
    page.mouse.click(*map_point(page, "conv2", 0))
    page.locator("dialog#detail[open] .kernel-grid").wait_for()
    atlas_digits(page, "channel-examples", 9)
    found += axe_through_dialog(page, "phone conv2 dialog")
    page.keyboard.press("Escape")
    page.locator("dialog#detail[open]").wait_for(state="detached")
    atlas_digits(page, "neighbors", 8)
    open_confusion_cell(page, 4, 9)
    found += serious_violations(page, "phone page, the atlas's views")
    assert found == []


# ---- layout ---------------------------------------------------------------------------------

HIT_TEST_JS = """
(selector) => {
  const missed = [];
  const items = [...document.querySelectorAll(selector)];
  for (const el of items) {
    el.scrollIntoView({ block: 'center', inline: 'center', behavior: 'instant' });
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    if (!el.contains(hit)) {
      const box = hit && hit.closest('section, .side');
      const who = hit ? `${hit.tagName} in ${box ? box.className : 'the page'}` : 'nothing';
      missed.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}" is under ${who}`);
    }
  }
  return { count: items.length, missed };
}
"""

MODEL_CARD_ITEMS = {
    "stats": "[data-testid=model-card] .stats > div",
    "architecture names": "[data-testid=model-card] .arch tbody th",
    "architecture params": "[data-testid=model-card] .arch tbody td.num",
    "charts": "[data-testid=model-card] .chart > svg",
    "confusion cells": "[data-testid=model-card] .confusion td",
    "confusion headers": "[data-testid=model-card] .confusion th",
}


def test_nothing_covers_the_model_card(app: App) -> None:
    """At 1400x1000 the sticky left column once sat on the left half of the model card."""
    page = app.page
    page.locator("[data-testid=model-card] .confusion").wait_for()
    for name, selector in MODEL_CARD_ITEMS.items():
        result = page.evaluate(HIT_TEST_JS, selector)
        assert result["count"] > 0, f"no {name} in the model card"
        assert result["missed"] == [], f"{name}: {result['missed'][:5]}"


def test_probabilities_start_above_the_fold_at_1280x800(laptop_app: App) -> None:
    page = laptop_app.page
    assert draw_and_wait(page, vertical_stroke()) == "1"
    assert page.evaluate("scrollY") == 0
    top = page.get_by_test_id("probabilities").evaluate("el => el.getBoundingClientRect().top")
    # the list starts on screen with room for at least its first rows
    assert 0 <= top <= 800 - 50, f"the probabilities start at y={top} of 800"
    assert in_viewport(page, "[data-testid=prediction]")


def test_phone_keeps_the_answer_in_view_while_drawing(phone_app: App) -> None:
    page = phone_app.page
    mini = page.get_by_test_id("prediction-mini")
    assert not mini.is_visible()  # nothing to say before a drawing
    assert draw_with_finger(phone_app) == "1"
    assert in_viewport(page, "[data-testid=pad]")
    mini.wait_for(state="visible")
    assert in_viewport(page, "[data-testid=prediction-mini]")
    assert mini.inner_text().startswith("1")
    # once the real answer is on screen the copy goes away
    page.locator("#prediction-card .prediction-digit").evaluate(
        "el => el.scrollIntoView({ block: 'center' })"
    )
    mini.wait_for(state="hidden")


def test_desktop_has_no_mini_answer(app: App) -> None:
    draw_and_wait(app.page, vertical_stroke())
    assert not app.page.get_by_test_id("prediction-mini").is_visible()


# ---- keyboard -------------------------------------------------------------------------------


def test_pad_is_reachable_and_draws_by_keyboard(app: App) -> None:
    page = app.page
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.testid") == "pad":
            break
    else:
        pytest.fail("Tab never reached the drawing pad")
    assert page.locator(".pad-keys").is_visible()  # how to draw with keys, shown on focus
    # a "1": from the middle up 8 px of 28, pen down, down 16 px, pen up
    before = strokes_measured(page)
    for key in ["Shift+ArrowUp"] * 2 + ["Space"] + ["Shift+ArrowDown"] * 4 + ["Space"]:
        page.keyboard.press(key)
    wait_for_views(page, before)
    assert page.get_by_test_id("prediction").inner_text() == "1"
    assert pad_has_ink(page)


def test_arrow_buttons_keep_focus_in_the_dialog(
    app: App, model_layers: list[dict[str, Any]]
) -> None:
    page = app.page
    draw_and_wait(page, vertical_stroke())
    conv1 = next(layer for layer in model_layers if layer["name"] == "conv1")
    last = conv1["output_shape"][0] - 1
    page.mouse.click(*map_point(page, "conv1", last - 1))
    page.locator("dialog#detail[open] .next").focus()
    page.keyboard.press("Enter")
    page.locator("#detail-title", has_text=f"channel {last} of").wait_for()
    page.keyboard.press("Enter")  # at the last channel: nothing happens, focus stays
    assert f"channel {last} of" in title(page)
    focus = page.evaluate(
        "[document.activeElement.classList.contains('next'),"
        " !!document.activeElement.closest('dialog[open]')]"
    )
    assert focus == [True, True], "focus left the dialog at the last channel"
    assert page.locator("dialog#detail .next").get_attribute("aria-disabled") == "true"

    page.locator("dialog#detail[open] .prev").focus()
    for _ in range(last + 1):
        page.keyboard.press("Enter")
    page.locator("#detail-title", has_text="channel 0 of").wait_for()
    assert page.evaluate("document.activeElement.classList.contains('prev')")


def test_second_escape_after_the_dialog_keeps_the_drawing(app: App) -> None:
    page = app.page
    assert draw_and_wait(page, vertical_stroke()) == "1"
    page.mouse.click(*map_point(page, "relu1", 0))
    page.locator("dialog#detail[open]").wait_for()
    page.keyboard.press("Escape")  # closes the dialog
    page.locator("dialog#detail[open]").wait_for(state="detached")
    page.keyboard.press("Escape")  # focus is back on the map: this does not clear the pad
    assert page.get_by_test_id("prediction").inner_text() == "1"
    assert pad_has_ink(page)


def test_clear_can_be_undone(app: App) -> None:
    page = app.page
    assert draw_and_wait(page, vertical_stroke()) == "1"
    page.get_by_test_id("clear").click()
    page.locator('main[data-state="idle"]').wait_for(state="attached")
    assert not pad_has_ink(page)
    page.get_by_test_id("undo").click()
    page.locator('main[data-state="ready"]').wait_for(state="attached")
    assert page.get_by_test_id("prediction").inner_text() == "1"
    assert pad_has_ink(page)


# ---- the detail view of vectors -------------------------------------------------------------


def test_dense_unit_detail_shows_its_top_weights(app: App, server_url: str) -> None:
    page = app.page
    draw_and_wait(page, vertical_stroke())
    open_detail(page, "fc1", 5)
    assert "unit 5 of 128" in title(page)
    rows = page.locator("dialog#detail table.weights tbody tr")
    rows.first.wait_for()
    shown = [int(t) for t in rows.locator("th").all_inner_texts()]
    # the same eight inputs, straight from the weights endpoint: row 5 of [out, in]
    body = httpx.get(f"{server_url}/api/v1/model/layers/fc1/weights", trust_env=False).json()
    weight = np.asarray(body["weight"], dtype=np.float32)
    assert weight.shape == (128, 1600)  # fc1 reads the third conv's 5x5x64 maps
    expected = np.argsort(-np.abs(weight[5]), kind="stable")[:8]
    assert set(shown) == {int(j) for j in expected}
    # arrow keys move to the next unit (the vector canvas has focus)
    page.keyboard.press("ArrowRight")
    page.locator("#detail-title", has_text="unit 6 of 128").wait_for()
    page.locator("dialog#detail table.weights tbody tr").first.wait_for()
    page.keyboard.press("ArrowDown")  # 16 units to a row
    page.locator("#detail-title", has_text="unit 22 of 128").wait_for()


def test_softmax_and_logit_details(app: App) -> None:
    page = app.page
    assert draw_and_wait(page, vertical_stroke()) == "1"
    open_detail(page, "softmax", 1)
    assert title(page) == "softmax \u00b7 digit 1"
    shown = page.locator("dialog#detail .big-value").inner_text()
    # the same probability as the bar for 1, to the bar's precision
    bar = page.get_by_test_id("probabilities").locator(".prob-pct").nth(1).inner_text()
    assert re.fullmatch(r"\d+(\.\d)?%", shown), shown
    assert abs(float(shown[:-1]) - float(bar[:-1])) <= 1.0, (shown, bar)
    page.keyboard.press("Escape")
    page.locator("dialog#detail[open]").wait_for(state="detached")
    open_detail(page, "fc2", 1)
    assert "raw score (logit) for digit 1" in title(page)
    assert "raw scores (logits)" in page.locator(".detail-sub").inner_text()


# ---- words ----------------------------------------------------------------------------------

HINTS = ["#pad-card", "#layers .section-head", "#input-card"]


def visible_hint_text(page: Page) -> str:
    return " ".join(page.locator(sel).inner_text() for sel in HINTS)


def test_touch_screens_are_told_to_tap(phone_app: App) -> None:
    page = phone_app.page
    draw_with_finger(phone_app)
    text = visible_hint_text(page)
    assert re.search(r"\btap\b", text, re.IGNORECASE), text
    for word in ("hover", "click", "Esc", "Ctrl+Z", "drop"):
        assert word.lower() not in text.lower(), f"a touch screen is told {word!r}: {text}"
    page.touchscreen.tap(*map_point(page, "conv1", 0))
    readout = page.locator("dialog#detail[open] .detail-map .readout")
    assert "Tap" in readout.inner_text()


def test_mouse_screens_are_told_to_hover_and_use_keys(app: App) -> None:
    text = visible_hint_text(app.page)
    for word in ("Hover", "click", "Esc", "Ctrl+Z"):
        assert word in text, f"{word!r} is missing: {text}"
    assert not re.search(r"\btap\b", text, re.IGNORECASE), text


def test_learner_words_are_on_the_page(app: App) -> None:
    page = app.page
    page.locator("[data-testid=model-card] .confusion").wait_for()
    glossary = page.locator("#glossary").inner_text().lower()
    for word in ("same", "stride", "viridis", "receptive field", "pooling mask", "logits"):
        assert word in glossary, f"the glossary does not explain {word!r}"
    shapes = "channels\u2009\u00d7\u2009height\u2009\u00d7\u2009width"
    assert shapes in page.locator("#layers").inner_text()
    confusion = page.locator("[data-testid=model-card] .confusion")
    assert confusion.locator("th", has_text="predicted digit").count() == 1
    assert confusion.locator("th", has_text="true digit").count() == 1


CHART_TICKS_JS = """
(svgs) => svgs.map((s) => ({
  y: [...s.querySelectorAll('text.tick.y')].map((t) => t.textContent),
  x: [...s.querySelectorAll('text.tick.x')].map((t) => t.textContent),
}))
"""


def test_training_chart_ticks(app: App, server_url: str) -> None:
    page = app.page
    page.locator("[data-testid=model-card] .chart").first.wait_for()
    epochs = httpx.get(f"{server_url}/api/v1/model", trust_env=False).json()["metrics"]["epochs"]
    charts = page.locator("[data-testid=model-card] .chart > svg").evaluate_all(CHART_TICKS_JS)
    assert len(charts) == 2
    loss, accuracy = charts
    loss_ticks = [float(t) for t in loss["y"]]
    assert loss_ticks, loss
    assert min(loss_ticks) >= 0, f"a negative loss tick: {loss['y']}"
    accuracy_ticks = [float(t.rstrip("%")) for t in accuracy["y"]]
    assert max(accuracy_ticks) <= 100, accuracy["y"]
    for ticks in (loss_ticks, accuracy_ticks):  # evenly spaced, increasing
        gaps = np.diff(ticks)
        assert np.all(gaps > 0), ticks
        assert np.allclose(gaps, gaps[0]), ticks
    # epochs: the first and the last, increasing, no two closer than half the chart's step
    # (never 19 and 20 on a chart counting in fives; 1, 2, 3, 4 for four epochs is right)
    for chart in charts:
        xs = [int(t) for t in chart["x"]]
        assert xs[0] == 1, xs
        assert xs[-1] == len(epochs), xs
        gaps = [b - a for a, b in itertools.pairwise(xs)]
        assert all(gap > 0 and 2 * gap >= max(gaps) for gap in gaps), xs


def test_server_time_and_the_colour_ranges_are_named(app: App) -> None:
    page = app.page
    draw_and_wait(page, vertical_stroke())
    assert "on the server" in page.locator("#prediction-card .prediction-note").inner_text()
    page.mouse.click(*map_point(page, "conv1", 0))
    note = page.locator("dialog#detail[open] .lg-note").inner_text()
    assert "own range" in note, note
    assert "whole layer" in note, note


def test_package_json_pins_axe_core() -> None:
    import json

    package = json.loads(Path(ROOT / "package.json").read_text(encoding="utf-8"))
    assert package["private"] is True
    version = package["devDependencies"]["axe-core"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"axe-core is not pinned: {version}"
    lock = json.loads(Path(ROOT / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"]["node_modules/axe-core"]["version"] == version
