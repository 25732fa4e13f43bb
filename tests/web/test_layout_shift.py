"""A page that does not jump (issue 24): the cumulative layout shift while the page loads, on a
desktop and a phone, and while each view opens and fills, stays under MAX_LAYOUT_SHIFT (0.05).

A PerformanceObserver on 'layout-shift' (LAYOUT_SHIFT_JS in browser_kit.py) runs before the page's
own scripts. Every view is opened without trusted input (a dispatched click, a state change, a
stroke of synthetic pointer events), so no shift is excused as following the person's input
(hadRecentInput): each one counts. A failure lists every shift with the elements that moved.

A new view gets its line in OPENERS: how to open it and what to wait for once it has filled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.web.browser_kit import (
    DESKTOP,
    LAYOUT_SHIFT_JS,
    MAX_LAYOUT_SHIFT,
    PHONE,
    App,
    app_in,
    draw_burst,
    require_browser,
    strokes_measured,
    vertical_stroke,
    wait_for_views,
    watch_shifts,
)
from tests.web.test_a11y import open_detail

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

require_browser()

pytestmark = pytest.mark.browser

OTHER_MODEL = "lenet5"  # a shipped model with other layers than the default one


def loaded(page: Page) -> None:
    """Everything the page asks for at start has landed: the layers, the model card, the list
    of models."""
    page.locator(".model-body .stats").wait_for()
    page.wait_for_function("document.querySelector('#model-picker').options.length > 1")


def draw(page: Page) -> None:
    """A "1" as one burst of synthetic pointer events, and every view showing it."""
    before = strokes_measured(page)
    draw_burst(page, vertical_stroke())
    wait_for_views(page, before)


# JS: true once the window has not scrolled for a few polls (the nav scrolls smoothly)
SCROLL_AT_REST_JS = """
() => {
  const w = window.__scrollRest || (window.__scrollRest = { y: -1, same: 0 });
  w.same = scrollY === w.y ? w.same + 1 : 0;
  w.y = scrollY;
  return w.same >= 3;
}
"""


def go_to(page: Page, section: str) -> None:
    """Follow the header's link to a section, as a dispatched click, and wait for the scroll."""
    page.locator(f'.site-nav a[href="#{section}"]').dispatch_event("click")
    page.wait_for_function(SCROLL_AT_REST_JS, polling=100)


def open_train(page: Page) -> None:
    go_to(page, "train")
    page.get_by_test_id("train-status").filter(has_text="start").wait_for()


def open_teach(page: Page) -> None:
    draw(page)
    page.get_by_test_id("teach-label-7").dispatch_event("click")
    go_to(page, "teach")
    page.get_by_test_id("teach-examples").locator("li .te-read", has_text="reads").wait_for()


def open_model_card(page: Page) -> None:
    go_to(page, "model-card")
    page.locator(".model-body .conf-key").wait_for()


def open_map_detail(page: Page) -> None:
    draw(page)
    open_detail(page, "conv1", 0)
    page.locator("dialog#detail[open] .kernel-grid").wait_for()


def open_unit_detail(page: Page) -> None:
    draw(page)
    open_detail(page, "fc1", 3)
    page.locator("dialog#detail[open] table.weights tbody tr").first.wait_for()


def switch_model(page: Page) -> None:
    draw(page)
    page.get_by_test_id("model-picker").select_option(OTHER_MODEL)
    page.locator(".model-body .stats dd", has_text=OTHER_MODEL).wait_for()
    page.locator('main[data-state="ready"]').wait_for(state="attached")


def open_compare(page: Page) -> None:
    draw(page)
    page.get_by_test_id("compare-toggle").dispatch_event("click")
    page.locator(".cmp-cols .cmp-col").nth(1).wait_for()


def open_embedding(page: Page) -> None:
    """Where the drawing sits: the map of test digits, the drawing's ring and its neighbours."""
    draw(page)
    page.get_by_test_id("embedding-map").locator(".emb-stage").scroll_into_view_if_needed()
    page.get_by_test_id("neighbors").locator(".digit-btn[data-n]").nth(7).wait_for()


def open_filter_atlas(page: Page) -> None:
    """What a filter looks for: conv2's kernel and its examples both arrive after it opens."""
    draw(page)
    open_detail(page, "conv2", 3)
    page.locator("dialog#detail[open] .kernel-grid").wait_for()
    page.get_by_test_id("channel-examples").locator(".digit-btn[data-n]").nth(8).wait_for()


def open_confusion_cell(page: Page) -> None:
    open_model_card(page)
    page.get_by_test_id("confusion-cell-4-9").dispatch_event("click")
    page.get_by_test_id("confusion-digits").locator(".digit-btn[data-n]").first.wait_for()


def open_class_inputs(page: Page) -> None:
    open_model_card(page)
    page.get_by_test_id("class-inputs").scroll_into_view_if_needed()
    page.locator(".ci-p", has_text="sure").nth(9).wait_for()


# each view: how it opens on a loaded desktop page, and what shows once it has filled
OPENERS: dict[str, Callable[[Page], None]] = {
    "a drawing": draw,
    "the Train view": open_train,
    "the Teach view with a new example": open_teach,
    "the model card": open_model_card,
    "the detail dialog of a map": open_map_detail,
    "the detail dialog of a dense unit": open_unit_detail,
    "a model switch": switch_model,
    "compare mode": open_compare,
    "the map of digits and a drawing's neighbours": open_embedding,
    "the detail dialog's filter atlas": open_filter_atlas,
    "a confusion cell's digits": open_confusion_cell,
    "the class inputs": open_class_inputs,
}


@pytest.fixture
def watched_app(browser: Browser, server_url: str) -> Iterator[App]:
    """The desktop page with the layout-shift observer installed, everything loaded."""
    with app_in(browser, server_url, init_script=LAYOUT_SHIFT_JS, viewport=DESKTOP) as app:
        loaded(app.page)
        yield app


@pytest.mark.parametrize("where", ["desktop", "phone"], ids=["desktop 1400x1000", "phone 375x812"])
def test_the_page_does_not_jump_while_it_loads(
    browser: Browser, server_url: str, where: str
) -> None:
    options = {"viewport": DESKTOP} if where == "desktop" else PHONE
    with (
        app_in(browser, server_url, init_script=LAYOUT_SHIFT_JS, **options) as app,
        watch_shifts(app.page, from_start=True) as shifts,
    ):
        loaded(app.page)
    print(f"\n{where} load: {shifts.report()}")
    assert shifts.total < MAX_LAYOUT_SHIFT, shifts.report()
    assert app.watch.problems() == {k: [] for k in app.watch.problems()}


@pytest.mark.parametrize("view", OPENERS)
def test_nothing_jumps_while_a_view_opens_and_fills(watched_app: App, view: str) -> None:
    with watch_shifts(watched_app.page) as shifts:
        OPENERS[view](watched_app.page)
    print(f"\n{view}: {shifts.report()}")
    assert shifts.total < MAX_LAYOUT_SHIFT, f"{view}: {shifts.report()}"
    assert watched_app.watch.problems() == {k: [] for k in watched_app.watch.problems()}
