"""The layer explorer in real Chromium: each channel drawn in its own tile, in the documented
colours, at the right place (checked against the server's own numbers for the same image), and
every panel usable from the keyboard: a cursor, a readout of the value, the receptive field, Enter
to open it."""

from __future__ import annotations

import io
import json
import random
import re
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.web.browser_kit import (
    DESKTOP,
    TILES_JS,
    App,
    draw_and_wait,
    ellipse,
    open_app,
    require_browser,
)

require_browser()

pytestmark = pytest.mark.browser

# The colour scales the page documents: viridis (matplotlib) and ColorBrewer RdBu reversed.
VIRIDIS = (
    "440154 48186a 472d7b 424086 3b528b 33638d 2c728e 26828e 21918c"
    " 1f9f88 27ad81 3dbc74 5cc863 81d34d aadc32 d5e21a fde725"
)
RDBU = "053061 2166ac 4393c3 92c5de d1e5f0 f7f7f7 fddbc7 f4a582 d6604d b2182b 67001f"
COLOUR_TOLERANCE = 8  # per RGB channel: the page's values are quantised to 256 levels


def expected_rgb(values: np.ndarray, stops: str, lo: float, hi: float) -> np.ndarray:
    """(..., 3) colours of values on a scale from lo to hi, interpolated between the stops."""
    rgb = np.array([[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in stops.split()], float)
    at = np.clip(np.rint((values - lo) / (hi - lo) * 255), 0, 255) / 255
    grid = np.linspace(0, 1, len(rgb))
    return np.stack([np.interp(at, grid, rgb[:, k]) for k in range(3)], axis=-1)


def seven_png() -> bytes:
    img = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(img).line([(70, 60), (210, 60), (120, 235)], fill=20, width=22)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def seven(app: App, server_url: str) -> dict[str, np.ndarray]:
    """The page showing an uploaded "7"; every layer's output for it, straight from the server."""
    data = seven_png()
    app.page.get_by_test_id("upload").set_input_files(
        {"name": "seven.png", "mimeType": "image/png", "buffer": data}
    )
    app.page.locator('main[data-state="ready"]').wait_for(state="attached")
    app.page.locator('[data-testid="layer-softmax"]:not(.empty)').wait_for(state="attached")
    response = httpx.post(
        f"{server_url}/api/v1/predict/file?activations=true",
        files={"file": ("seven.png", data, "image/png")},
        timeout=10.0,
        trust_env=False,
    )
    response.raise_for_status()
    return {layer["name"]: np.array(layer["data"]) for layer in response.json()["layers"]}


PIXELS_JS = """
(maps) => {
  const cv = maps.querySelector('canvas');
  return { width: cv.width, height: cv.height,
           rgba: Array.from(cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data) };
}
"""


@pytest.mark.parametrize(
    ("name", "stops", "diverging"), [("conv1", RDBU, True), ("pool1", VIRIDIS, False)]
)
def test_each_tile_is_its_channel_in_the_layer_colours(
    app: App, seven: dict[str, np.ndarray], name: str, stops: str, diverging: bool
) -> None:
    want = seven[name]  # (C, H, W)
    maps = app.page.get_by_test_id(f"layer-{name}").locator(".maps")
    geometry = maps.evaluate(TILES_JS)
    pixels = maps.evaluate(PIXELS_JS)
    image = np.array(pixels["rgba"], np.float64).reshape(pixels["height"], pixels["width"], 4)
    m = float(np.abs(want).max())
    lo, hi = (-m, m) if diverging else (float(want.min()), float(want.max()))
    C, H, W = want.shape
    cols, gap = geometry["cols"], geometry["gap"]
    worst = []
    for t in range(C):
        y0, x0 = (t // cols) * (H + gap), (t % cols) * (W + gap)
        tile = image[y0 : y0 + H, x0 : x0 + W]
        assert (tile[..., 3] == 255).all(), f"channel {t}: not opaque"
        worst.append(np.abs(tile[..., :3] - expected_rgb(want[t], stops, lo, hi)).max())
    assert max(worst) <= COLOUR_TOLERANCE, f"largest colour error per channel: {worst}"


READOUT = re.compile(r"channel (\d+) · row (\d+), col (\d+): (\S+)")


def number(text: str) -> float:
    return float(text.replace("\u2212", "-"))


def close(shown: str, value: float, values: np.ndarray) -> bool:
    """A readout (3 significant digits of a value quantised to 256 levels) matches a value."""
    step = float(values.max() - values.min()) / 255
    return abs(number(shown) - value) <= step + 0.006 * abs(value) + 1e-6


def readout(app: App, name: str) -> str:
    return app.page.get_by_test_id(f"layer-{name}").locator(".readout").inner_text()


def highlight(app: App) -> list[float]:
    """The receptive field box on the 28x28 input view, in input pixels [r0, c0, r1, c1]."""
    box = app.page.locator('[data-testid="input-view"] .rf')
    assert box.is_visible()
    style = box.evaluate("(el) => [el.style.top, el.style.left, el.style.height, el.style.width]")
    top, left, height, width = (float(s.rstrip("%")) * 28 / 100 for s in style)
    return [round(top), round(left), round(top + height) - 1, round(left + width) - 1]


def test_keyboard_moves_over_the_maps_reads_values_and_opens_a_channel(
    app: App, seven: dict[str, np.ndarray]
) -> None:
    page = app.page
    conv = seven["conv1"]
    maps = page.get_by_test_id("layer-conv1").locator(".maps")
    assert maps.get_attribute("tabindex") == "0"
    assert maps.get_attribute("role") == "application"
    assert "arrow keys" in (maps.get_attribute("aria-label") or "")
    assert page.get_by_test_id("layer-conv1").locator(".readout").get_attribute("aria-live")
    maps.focus()

    def at() -> tuple[int, int, int]:
        m = READOUT.fullmatch(readout(app, "conv1"))
        assert m, readout(app, "conv1")
        ch, r, c = (int(g) for g in m.groups()[:3])
        assert close(m.group(4), float(conv[ch, r, c]), conv), (m.group(0), conv[ch, r, c])
        return ch, r, c

    assert at() == (0, 0, 0)
    assert highlight(app) == [0, 0, 1, 1]  # a 3x3 "same" convolution, clipped at the corner
    for key in ["ArrowRight"] * 3 + ["ArrowDown"] * 2:
        page.keyboard.press(key)
    assert at() == (0, 2, 3)
    assert highlight(app) == [1, 2, 3, 4]
    page.keyboard.press("Shift+ArrowRight")  # the next map, same cell
    assert at() == (1, 2, 3)
    for _ in range(4):  # off its left edge: into the map before, at its right edge
        page.keyboard.press("ArrowLeft")
    assert at() == (0, 2, 27)
    page.keyboard.press("End")
    assert at() == (31, 2, 27)
    page.keyboard.press("Enter")
    page.locator("#detail-title", has_text="conv1 · channel 31 of").wait_for()
    page.keyboard.press("Escape")
    page.locator("dialog#detail[open]").wait_for(state="detached")
    assert maps.evaluate("(el) => el === document.activeElement")
    assert at() == (31, 2, 27)  # the cursor is where it was


def test_keyboard_reads_units_of_vectors_and_cells(app: App, seven: dict[str, np.ndarray]) -> None:
    page = app.page
    fc1 = seven["fc1"]
    vector = page.get_by_test_id("layer-fc1").locator(".vector")
    vector.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    shown = re.fullmatch(r"unit 5: (\S+)", readout(app, "fc1"))
    assert shown, readout(app, "fc1")
    assert close(shown.group(1), float(fc1[5]), fc1)
    page.keyboard.press("End")
    assert readout(app, "fc1").startswith(f"unit {len(fc1) - 1}: ")
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.locator("dialog#detail[open]").wait_for()
    assert re.search(r"fc1\b.*\b1\b", page.locator("#detail-title").inner_text())
    page.keyboard.press("Escape")
    page.locator("dialog#detail[open]").wait_for(state="detached")
    assert vector.evaluate("(el) => el === document.activeElement")

    softmax = seven["softmax"]
    cells = page.get_by_test_id("layer-softmax").locator(".cells")
    cells.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    shown = re.fullmatch(r"P\(3\): (\S+)", readout(app, "softmax"))
    assert shown, readout(app, "softmax")
    assert close(shown.group(1), float(softmax[3]), softmax)
    assert cells.locator(".cell.current").get_attribute("data-i") == "3"
    page.keyboard.press("Tab")  # leaving the panel leaves no cursor behind
    assert cells.locator(".cell.current").count() == 0


def test_hovering_a_vector_reads_the_unit_under_the_pointer(
    app: App, seven: dict[str, np.ndarray]
) -> None:
    fc1 = seven["fc1"]
    canvas = app.page.get_by_test_id("layer-fc1").locator(".vector canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    app.page.mouse.move(box["x"] + box["width"] * 100.5 / len(fc1), box["y"] + box["height"] / 2)
    shown = re.fullmatch(r"unit 100: (\S+)", readout(app, "fc1"))
    assert shown, readout(app, "fc1")
    assert close(shown.group(1), float(fc1[100]), fc1)


# --- the cursor's moves, against a plain model of them -----------------------------------------

MOVES_JS = """
async ([layout, keys]) => {
  const { tileLayout, moveCursor } = await import('/js/tiles.js');
  const L = tileLayout(...layout);
  let at = { t: 0, r: 0, c: 0 };
  return keys.map(([key, shift]) => {
    at = moveCursor(L, at, key, shift) || at;
    return [at.t, at.r, at.c];
  });
}
"""

STEPS = {"ArrowLeft": (0, -1), "ArrowRight": (0, 1), "ArrowUp": (-1, 0), "ArrowDown": (1, 0)}


def model_moves(C: int, H: int, W: int, cols: int, keys: list[tuple[str, bool]]) -> list[list[int]]:
    """The tiles as one big grid of cells (rows of `cols` tiles): an arrow steps one cell of it,
    with Shift one tile; a step off the grid or into a missing tile stays put."""
    y = x = 0
    out = []
    for key, shift in keys:
        if key in ("Home", "End"):
            t = 0 if key == "Home" else C - 1
            y, x = (t // cols) * H + y % H, (t % cols) * W + x % W
        else:
            dy, dx = STEPS[key]
            ny, nx = y + dy * (H if shift else 1), x + dx * (W if shift else 1)
            if ny >= 0 and 0 <= nx < cols * W and (ny // H) * cols + nx // W < C:
                y, x = ny, nx
        out.append([(y // H) * cols + x // W, y % H, x % W])
    return out


@pytest.mark.parametrize(("C", "H", "W", "cols"), [(32, 28, 28, 14), (10, 3, 2, 4), (7, 1, 5, 7)])
def test_cursor_moves_like_one_big_grid(app: App, C: int, H: int, W: int, cols: int) -> None:
    rng = random.Random(C * 1000 + H)
    names = [*STEPS, "Home", "End"]
    keys = [(rng.choice(names), rng.random() < 0.3) for _ in range(400)]
    got = app.page.evaluate(MOVES_JS, json.loads(json.dumps([[C, H, W, cols, 1], keys])))
    assert got == model_moves(C, H, W, cols, keys)


# --- a strict Content-Security-Policy ------------------------------------------------------------

STRICT_CSP = (
    "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'self'"
)


def test_the_explorer_works_under_a_strict_csp(browser: Any, server_url: str) -> None:
    """Scripts only from the page's origin, no inline script or style attribute, no eval."""
    context = browser.new_context(viewport=DESKTOP)

    def with_csp(route: Any) -> None:
        if route.request.resource_type != "document":
            return route.continue_()
        response = route.fetch()
        route.fulfill(
            response=response, headers={**response.headers, "content-security-policy": STRICT_CSP}
        )

    context.route("**/*", with_csp)
    try:
        app = open_app(context, server_url)
        draw_and_wait(app.page, ellipse())
        maps = app.page.get_by_test_id("layer-conv1").locator(".maps")
        assert maps.evaluate(TILES_JS)["colours"][0] > 1
        maps.focus()
        app.page.keyboard.press("ArrowRight")
        assert readout(app, "conv1").startswith("channel 0 · row 0, col 1: ")
        problems = {k: v for k, v in app.watch.problems().items() if v}
        assert not problems, problems
    finally:
        context.close()
