"""Helpers for the real-browser tests: run the app under uvicorn, watch a page for errors, draw
on the pad with a mouse or a finger, read canvases back. Fixtures live in conftest.py.

Nothing leaves 127.0.0.1: the server binds there, and Chromium resolves every other host name
to nothing (see CHROMIUM_ARGS), on top of having its background services switched off.

Environment:
  CONVSCOPE_BROWSER_WEIGHTS  weights file to serve (default: the shipped model_weights/...npz)
  CI=true                    a missing Chromium, Playwright or weights file fails instead of skips
"""

from __future__ import annotations

import io
import itertools
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from server.cli.local_server import local_server
from server.training.mnist import FILES, MnistError, find_file

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

try:
    import playwright.sync_api  # noqa: F401 (only whether it is installed)

    HAVE_PLAYWRIGHT = True
except ImportError:
    HAVE_PLAYWRIGHT = False

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHIPPED_WEIGHTS = ROOT / "model_weights" / "mnist_cnn.npz"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    # belt and braces for "only 127.0.0.1 traffic": no other host name resolves
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
DESKTOP = {"width": 1400, "height": 1000}
# new_context options of a 375x812 touch phone that honours the page's mobile viewport meta
PHONE: dict[str, Any] = {
    "viewport": {"width": 375, "height": 812},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
# An init script that records every Content-Security-Policy violation; read by csp_violations
CSP_LISTENER = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(
  `${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`
));
"""
TIMEOUT_MS = 20_000  # per Playwright wait; predictions take tens of ms, model loads a second


def csp_violations(page: Page) -> list[str]:
    """The violations CSP_LISTENER has recorded on `page` so far."""
    return list(page.evaluate("window.__violations"))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def require_browser() -> None:
    """Skip the calling test module when Chromium or Playwright is missing; under CI=true that
    is an error instead, so a broken install cannot pass as skipped tests."""
    skip_unless_ready("the browser tests", missing_requirements())


def skip_unless_ready(tests: str, missing: list[str]) -> None:
    """Skip the calling module, naming what `tests` lack; under CI=true, which installs all of
    it, fail instead: a silent skip there would hide a broken install."""
    if not missing:
        return
    reason = f"{tests} need " + "; ".join(missing)
    if in_ci():
        pytest.fail(f"{reason} (CI=true, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def weights_file() -> Path:
    override = os.environ.get("CONVSCOPE_BROWSER_WEIGHTS")
    return Path(override) if override else SHIPPED_WEIGHTS


def missing_requirements() -> list[str]:
    """What the browser tests need and this machine lacks, in words (empty when all is here)."""
    missing = []
    if not HAVE_PLAYWRIGHT:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if not CHROMIUM.is_file():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if not weights_file().is_file():
        missing.append(f"the trained weights {weights_file()} (make train)")
    return missing


# --- the server ---------------------------------------------------------------------------


# --- the browser --------------------------------------------------------------------------


@dataclass
class Watch:
    """What went wrong on a page: console errors, uncaught exceptions, failed or foreign traffic."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on(
            "console",
            lambda m: m.type == "error" and self.console_errors.append(f"{m.text} @ {m.location}"),
        )
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on(
            "response",
            lambda r: r.status >= 400 and self.bad_responses.append(f"{r.status} {r.url}"),
        )
        page.on("request", self._request)

    def _request(self, request: Any) -> None:
        url = request.url
        if not (url.startswith(self.origin + "/") or url.startswith(("data:", "blob:"))):
            self.foreign_requests.append(url)

    def problems(self) -> dict[str, list[str]]:
        return {
            "console errors": self.console_errors,
            "page errors": self.page_errors,
            "HTTP errors": self.bad_responses,
            "requests off 127.0.0.1": self.foreign_requests,
        }


@dataclass
class App:
    """One open ConvScope page and what it noticed."""

    page: Page
    watch: Watch
    url: str


def open_app(context: BrowserContext, url: str) -> App:
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    watch = Watch(origin=url)
    watch.attach(page)
    page.goto(url + "/")
    # the layer panels are built from /api/v1/model; softmax is always the last one
    page.locator('[data-testid="layer-softmax"]').wait_for(state="attached")
    page.locator('main[data-state="idle"]').wait_for(state="attached")
    return App(page=page, watch=watch, url=url)


@contextmanager
def app_in(
    browser: Browser, url: str, *, init_script: str | None = None, **context_options: Any
) -> Iterator[App]:
    """The app open and idle in a fresh browser context (`context_options`: viewport, touch,
    ...), with `init_script` run before the page's own; the context closed afterwards."""
    context = browser.new_context(**context_options)
    if init_script is not None:
        context.add_init_script(init_script)
    try:
        yield open_app(context, url)
    finally:
        context.close()


# --- drawing ------------------------------------------------------------------------------

Points = Sequence[tuple[float, float]]  # fractions of the pad's width and height


def vertical_stroke(x: float = 0.5, top: float = 0.18, bottom: float = 0.82, n: int = 40) -> Points:
    """A "1"."""
    return [(x, top + (bottom - top) * i / (n - 1)) for i in range(n)]


def ellipse(
    cx: float = 0.5, cy: float = 0.5, rx: float = 0.2, ry: float = 0.3, n: int = 64
) -> Points:
    """A "0": a closed loop, starting and ending at the top."""
    return [
        (cx + rx * math.sin(2 * math.pi * i / n), cy - ry * math.cos(2 * math.pi * i / n))
        for i in range(n + 2)
    ]


def polyline(corners: Points, per_segment: int = 20) -> Points:
    """Corners joined by straight runs of small steps."""
    pts: list[tuple[float, float]] = [corners[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(corners):
        pts += [
            (x0 + (x1 - x0) * k / per_segment, y0 + (y1 - y0) * k / per_segment)
            for k in range(1, per_segment + 1)
        ]
    return pts


def pad_box(page: Page) -> dict[str, float]:
    box = page.get_by_test_id("pad").bounding_box()
    assert box is not None, "the drawing pad is not displayed"
    return box


def draw_mouse(page: Page, points: Points) -> None:
    """One stroke with the mouse: down at the first point, small moves, up at the last."""
    box = pad_box(page)

    def at(p: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + p[0] * box["width"], box["y"] + p[1] * box["height"]

    page.mouse.move(*at(points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*at(p))
    page.mouse.up()


def draw_touch(page: Page, points: Points) -> None:
    """One stroke with a finger, as real touch input through the DevTools protocol."""
    box = pad_box(page)
    cdp = page.context.new_cdp_session(page)
    try:

        def touch(kind: str, p: tuple[float, float] | None) -> None:
            pts = []
            if p is not None:
                pts = [{"x": box["x"] + p[0] * box["width"], "y": box["y"] + p[1] * box["height"]}]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": pts})

        touch("touchStart", points[0])
        for p in points[1:]:
            touch("touchMove", p)
        touch("touchEnd", None)
    finally:
        cdp.detach()


BURST_JS = """
([cv, pts]) => {
  const r = cv.getBoundingClientRect();
  const fire = (type, [x, y]) => cv.dispatchEvent(new PointerEvent(type, {
    bubbles: true, cancelable: true, composed: true, pointerId: 1, pointerType: 'mouse',
    isPrimary: true, button: type === 'pointermove' ? -1 : 0, buttons: type === 'pointerup' ? 0 : 1,
    clientX: r.left + x * r.width, clientY: r.top + y * r.height,
  }));
  fire('pointerdown', pts[0]);
  for (const p of pts.slice(1)) fire('pointermove', p);
  fire('pointerup', pts[pts.length - 1]);
}
"""


def draw_burst(page: Page, points: Points) -> None:
    """A whole stroke in one task of the page (synthetic pointer events): no answer can arrive
    before it ends, so its stroke-to-views measure spans a full request and render."""
    pad = page.get_by_test_id("pad").element_handle()
    page.evaluate(BURST_JS, [pad, [list(p) for p in points]])


def strokes_measured(page: Page) -> int:
    return int(page.evaluate("performance.getEntriesByName('stroke-to-views').length"))


def wait_for_views(page: Page, measures_before: int) -> None:
    """After a stroke: the views show the final drawing (a new stroke-to-views measure) and
    the app says it is ready."""
    page.wait_for_function(
        "n => performance.getEntriesByName('stroke-to-views').length > n", arg=measures_before
    )
    page.locator('main[data-state="ready"]').wait_for(state="attached")


def draw_and_wait(page: Page, points: Points) -> str:
    """Draw a stroke with the mouse, wait until every view shows it; the predicted digit."""
    before = strokes_measured(page)
    draw_mouse(page, points)
    wait_for_views(page, before)
    return page.get_by_test_id("prediction").inner_text()


# --- canvases -----------------------------------------------------------------------------

# JS: how many distinct RGBA colours a canvas holds (capped), read back with getImageData
DISTINCT_COLOURS_JS = """
(cv) => {
  const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
  const seen = new Set();
  for (let i = 0; i < d.length && seen.size < 16; i += 4) {
    seen.add(((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]) >>> 0);
  }
  return seen.size;
}
"""


def png_bytes(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


# A layer's feature maps are tiled on one canvas inside its `.maps` element, whose data-cols,
# data-rows and data-gap say how: tile t's top-left pixel is at ((t % cols) * (W + gap),
# floor(t / cols) * (H + gap)). These re-derive W and H from the canvas size, independently of
# the page's own tiling code.
TILE_GEOMETRY_JS = """
  const cv = maps.querySelector('canvas');
  const [cols, rows, gap] = ['cols', 'rows', 'gap'].map((k) => Number(maps.dataset[k]));
  const W = (cv.width + gap) / cols - gap;
  const H = (cv.height + gap) / rows - gap;
"""

# JS: per tile slot (cols * rows of them), how many RGBA colours it holds (capped at 16), and
# the largest alpha in the gaps between tiles
TILES_JS = (
    """
(maps) => {"""
    + TILE_GEOMETRY_JS
    + """
  const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
  const tiles = Array.from({ length: cols * rows }, () => new Set());
  let gapAlpha = 0;
  for (let y = 0; y < cv.height; y++) {
    for (let x = 0; x < cv.width; x++) {
      const i = (y * cv.width + x) * 4;
      const tx = Math.floor(x / (W + gap));
      const ty = Math.floor(y / (H + gap));
      if (x - tx * (W + gap) >= W || y - ty * (H + gap) >= H) {
        gapAlpha = Math.max(gapAlpha, d[i + 3]);
      } else if (tiles[ty * cols + tx].size < 16) {
        const rgba = ((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]) >>> 0;
        tiles[ty * cols + tx].add(rgba);
      }
    }
  }
  return { W, H, cols, rows, gap, colours: tiles.map((s) => s.size), gapAlpha };
}
"""
)

# JS: the page coordinates of the centre of tile `ch`
TILE_POINT_JS = (
    """
(maps, ch) => {"""
    + TILE_GEOMETRY_JS
    + """
  const r = cv.getBoundingClientRect();
  const s = r.width / cv.width;
  return [r.left + ((ch % cols) * (W + gap) + W / 2) * s,
          r.top + (Math.floor(ch / cols) * (H + gap) + H / 2) * s];
}
"""
)


def map_point(page: Page, layer: str, channel: int) -> tuple[float, float]:
    """Where channel `channel` of a layer's tiled maps is on the page (scrolled into view)."""
    maps = page.get_by_test_id(f"layer-{layer}").locator(".maps")
    point = None
    for _ in range(20):  # until the layout holds still: cards above may still be filling in
        maps.scroll_into_view_if_needed()
        x, y = maps.evaluate(TILE_POINT_JS, channel)
        if point == (float(x), float(y)):
            break
        point = (float(x), float(y))
        page.wait_for_timeout(100)
    assert point is not None
    return point


def mnist_dir() -> Path | None:
    """MNIST's directory when its files are there ($CONVSCOPE_MNIST_DIR, then $MNIST_DIR)."""
    for name in ("CONVSCOPE_MNIST_DIR", "MNIST_DIR"):
        value = os.environ.get(name)
        try:
            if value and all(find_file(Path(value), f) for f in FILES):
                return Path(value)
        except MnistError:
            pass
    return None


@contextmanager
def training_server(why: str, **settings: str) -> Iterator[str]:
    """A server of its own that may train on MNIST (the shared one serves every other browser
    test), with CONVSCOPE_* `settings`; skips saying `why` MNIST is needed when it is not there."""
    data = mnist_dir()
    if data is None:
        pytest.skip(f"{why}: set MNIST_DIR to a directory holding it")
    env = {"CONVSCOPE_MNIST_DIR": str(data), "CONVSCOPE_MNIST_DOWNLOAD": "false", **settings}
    with local_server(weights_file(), env=env) as server:
        yield server.url


# --- layout shift -------------------------------------------------------------------------

# An init script: every layout shift the page makes that no input explains (hadRecentInput is
# false), buffered from the first paint, with what moved and from where to where.
LAYOUT_SHIFT_JS = """
window.__shifts = [];
new PerformanceObserver((list) => {
  const name = (n) => {
    if (!n) return '(gone)';
    if (n.nodeType !== 1) return `text "${n.textContent.slice(0, 24)}"`;
    const cls = typeof n.className === 'string' ? n.className.trim().split(/\\s+/) : [];
    return n.tagName.toLowerCase() + (n.id ? `#${n.id}` : '') +
      cls.filter(Boolean).map((c) => `.${c}`).join('') +
      (n.dataset && n.dataset.testid ? `[data-testid=${n.dataset.testid}]` : '');
  };
  const box = (r) => [r.x, r.y, r.width, r.height].map(Math.round).join(' ');
  for (const e of list.getEntries()) {
    if (e.hadRecentInput) continue;
    window.__shifts.push({
      value: e.value, at: Math.round(e.startTime),
      sources: e.sources.map((s) =>
        `${name(s.node)}: x y w h ${box(s.previousRect)} -> ${box(s.currentRect)}`),
    });
  }
}).observe({ type: 'layout-shift', buffered: true });
"""
MAX_LAYOUT_SHIFT = 0.05  # the page's budget, on load and while any view opens and fills


@dataclass
class Shifts:
    """The layout shifts a page made while something happened (see watch_shifts)."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return float(sum(e["value"] for e in self.entries))

    def report(self) -> str:
        """What moved, a shift a line with its elements under it: for an assert's message."""
        lines = [f"cumulative layout shift {self.total:.4f} in {len(self.entries)} shifts"]
        for e in self.entries:
            lines.append(f"  {e['value']:.4f} at {e['at']} ms:")
            lines += [f"    {s}" for s in e["sources"]]
        return "\n".join(lines)


def settle(page: Page, quiet_ms: int = 400, limit_ms: int = 5000) -> None:
    """Wait until the page has made no layout shift for `quiet_ms` (at most `limit_ms`)."""
    page.wait_for_function(
        """([quiet]) => {
          const w = window.__shiftQuiet || (window.__shiftQuiet = { n: -1, since: 0 });
          const now = performance.now();
          const n = window.__shifts.length;
          if (w.n !== n) Object.assign(w, { n, since: now });
          return now - w.since >= quiet;
        }""",
        arg=[quiet_ms],
        polling=100,
        timeout=limit_ms + quiet_ms,
    )


@contextmanager
def watch_shifts(page: Page, *, from_start: bool = False) -> Iterator[Shifts]:
    """The layout shifts made while the body runs (or since the page began, `from_start`), and
    until the page holds still after it. The body opens a view and waits for what it shows; then
    read `.total` and `.report()`. LAYOUT_SHIFT_JS is installed here when no init script did (its
    observer is buffered, so the shifts since the page began are still there)."""
    if page.evaluate("window.__shifts === undefined"):
        page.evaluate(LAYOUT_SHIFT_JS)
    start = 0 if from_start else int(page.evaluate("window.__shifts.length"))
    shifts = Shifts()
    yield shifts
    settle(page)
    shifts.entries = list(page.evaluate("(n) => window.__shifts.slice(n)", start))
