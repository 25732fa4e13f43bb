"""How the page keeps up while the maps update: long tasks and ink frames during a long stroke,
and pen-up to every view updated. Real mouse input at ~60 Hz in real Chromium against the real
server; the figures are printed (and recorded as properties), the asserts are loose bounds.

The machine these run on has 2 cores and no GPU, so the figures are noisy: read them, compare
runs, and do not tighten the bounds to what one quiet run showed. Long tasks are wall time: other
busy processes stretch them too, and on a machine that is several times oversubscribed the
longest one can pass the bound however little the page does.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.web.browser_kit import (
    DESKTOP,
    App,
    app_in,
    draw_burst,
    ellipse,
    pad_box,
    polyline,
    require_browser,
    strokes_measured,
    vertical_stroke,
    wait_for_views,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

require_browser()

pytestmark = pytest.mark.browser

MOVE_HZ = 60
STROKE_SECONDS = 8.0
LONGEST_TASK_BOUND_MS = 150  # the target is 50 ms; this bound only catches a return to ~200 ms
MOVED_FRAMES_BOUND = 60  # frames in which a pointer move was handled (~480 at 60 Hz)
INK_FRAME_SHARE_BOUND = 0.8  # share of the frames with a pointer move that also drew the ink
STROKE_TO_VIEWS_BOUND_MS = 200  # median; the target is 50 ms

# Installed before the page's own scripts: what the main thread did while we drew.
# - every long task (> 50 ms) with its start time;
# - every pointermove: when the browser took the input in (timeStamp) and when a handler ran;
# - every animation frame, and whether the pad's canvas was stroked since the previous one.
PROBE_JS = """
(() => {
  const probe = (window.__probe = { tasks: [], moves: [], frames: [], ink: false });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) probe.tasks.push([e.startTime, e.duration]);
  }).observe({ type: 'longtask', buffered: true });
  addEventListener('pointermove', (e) => probe.moves.push([e.timeStamp, performance.now()]),
    { capture: true });
  const stroke = CanvasRenderingContext2D.prototype.stroke;
  CanvasRenderingContext2D.prototype.stroke = function (...args) {
    if (this.canvas.dataset && this.canvas.dataset.testid === 'pad') probe.ink = true;
    return stroke.apply(this, args);
  };
  const frame = (t) => {
    probe.frames.push([t, probe.ink]);
    probe.ink = false;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})();
"""


@pytest.fixture
def probed_app(browser: Browser, server_url: str) -> Iterator[App]:
    """The desktop page with PROBE_JS installed before anything of the page ran."""
    with app_in(browser, server_url, init_script=PROBE_JS, viewport=DESKTOP) as app:
        yield app


def loop(t: float) -> tuple[float, float]:
    """An "8" over the pad, once every 4 s (t in seconds), starting at the top."""
    a = 2 * math.pi * t / 4
    return 0.5 + 0.18 * math.sin(2 * a), 0.5 - 0.32 * math.cos(a)


def paced_stroke(page: Page, seconds: float, path: Any, *, press: bool = True) -> list[float]:
    """Mouse down, a move every 1/MOVE_HZ s along path(t) for `seconds`, mouse up; returns how
    long each move took to be acknowledged (ms). A late move is not made up for: the path is in
    wall time, so a busy page gets fewer, longer moves, as a hand would. press=False: hover."""
    box = pad_box(page)

    def at(t: float) -> tuple[float, float]:
        x, y = path(t)
        return box["x"] + x * box["width"], box["y"] + y * box["height"]

    acks = []
    page.mouse.move(*at(0))
    if press:
        page.mouse.down()
    start = time.perf_counter()
    tick = 0
    while (now := time.perf_counter() - start) < seconds:
        t0 = time.perf_counter()
        page.mouse.move(*at(now))
        acks.append((time.perf_counter() - t0) * 1000)
        tick = max(tick + 1, math.ceil((time.perf_counter() - start) * MOVE_HZ))
        time.sleep(max(0.0, start + tick / MOVE_HZ - time.perf_counter()))
    if press:
        page.mouse.up()
    return acks


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 1),
        "p90": round(sorted(values)[int(0.9 * (len(values) - 1))], 1),
        "max": round(max(values), 1),
    }


def test_long_stroke_keeps_the_page_responsive(probed_app: App, record_property: Any) -> None:
    page = probed_app.page
    hovering = paced_stroke(page, 2.0, loop, press=False)  # the same moves, nothing drawn
    wait = strokes_measured(page)
    t_start = page.evaluate("performance.now()")
    acks = paced_stroke(page, STROKE_SECONDS, loop)
    t_end = page.evaluate("performance.now()")
    wait_for_views(page, wait)
    probe = page.evaluate("window.__probe")

    def during(rows: list[list[Any]]) -> list[list[Any]]:
        return [r for r in rows if t_start <= r[0] <= t_end]

    tasks = [d for _, d in during(probe["tasks"])]
    moves = during(probe["moves"])
    frames = during(probe["frames"])
    move_delays = [handled - taken for taken, handled in moves]
    # a frame "had a move" when a pointermove was handled since the previous frame
    handled_at = sorted(h for _, h in moves)
    moved_frames = ink_frames = 0
    previous = t_start
    for t, ink in frames:
        if any(previous < h <= t for h in handled_at):
            moved_frames += 1
            ink_frames += bool(ink)
        previous = t
    figures = {
        "long tasks": summary(tasks),
        "total blocking time (ms)": round(sum(d - 50 for d in tasks)),
        "pointermove wait (ms)": summary(move_delays),
        "mouse.move round trip (ms)": summary(acks),
        "mouse.move round trip, hovering (ms)": summary(hovering),
        "frames": len(frames),
        "frames with a move": moved_frames,
        "of those, frames with ink": ink_frames,
        "ink frames in all": sum(bool(ink) for _, ink in frames),
    }
    print(f"\n{STROKE_SECONDS:.0f}-second stroke: {figures}")
    record_property("long_stroke", figures)
    assert page.get_by_test_id("prediction").inner_text() != ""
    assert moved_frames >= MOVED_FRAMES_BOUND, f"the page took few pointer moves: {figures}"
    assert max(tasks, default=0) < LONGEST_TASK_BOUND_MS, figures
    assert ink_frames >= INK_FRAME_SHARE_BOUND * moved_frames, figures


SHAPES = [vertical_stroke(), ellipse(), polyline([(0.22, 0.2), (0.78, 0.2), (0.45, 0.85)])]


def paced_points(page: Page, points: list[tuple[float, float]]) -> None:
    """One stroke through points, a move every 1/MOVE_HZ s (a quick hand: ~0.5-1 s a digit)."""
    per = 1 / MOVE_HZ
    paced_stroke(page, len(points) * per, lambda t: points[min(len(points) - 1, int(t / per))])


def test_stroke_to_views_median(app: App, record_property: Any) -> None:
    """Pen-up to every view updated (the stroke-to-views measure of web/js/main.js) over ten
    strokes drawn at ~60 Hz and ten "burst" strokes (a whole stroke in one task of the page, so
    the measure spans a full request, decode and render)."""
    page = app.page
    durations: dict[str, list[float]] = {"paced": [], "burst": []}
    for how, draw in (("paced", paced_points), ("burst", draw_burst)):
        for i in range(10):
            page.get_by_test_id("clear").click()
            page.locator('main[data-state="idle"]').wait_for(state="attached")
            before = strokes_measured(page)
            draw(page, list(SHAPES[i % len(SHAPES)]))
            wait_for_views(page, before)
            entries = page.evaluate(
                "performance.getEntriesByName('stroke-to-views').map((e) => e.duration)"
            )
            assert len(entries) == before + 1
            durations[how].append(round(float(entries[-1]), 1))
    medians = {how: statistics.median(d) for how, d in durations.items()}
    print(f"\nstroke-to-views (ms): medians {medians}, all {durations}")
    record_property("stroke_to_views_ms", durations)
    assert all(m < STROKE_TO_VIEWS_BOUND_MS for m in medians.values()), durations
