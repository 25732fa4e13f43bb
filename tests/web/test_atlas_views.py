"""The atlas on the page (issue 20), in a real Chromium against the served app with the shipped
models and their atlases: what a filter looks for (the detail view), where the drawing sits
among the test digits (the map, its marker, its 8 neighbours, reading a dot by keyboard), the
digits behind a confusion-matrix cell, the ten class inputs; another model, a phone, and a
model without an atlas.

Every digit, value, pixel and place the page shows is checked against the API asked directly
with httpx (for the drawing the page sent, read off its request) or against arithmetic done
here, never against the page's own decoding.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest

from server.cli.local_server import local_server
from tests.web.browser_kit import (
    DESKTOP,
    PHONE,
    SHIPPED_WEIGHTS,
    App,
    app_in,
    draw_and_wait,
    draw_touch,
    ellipse,
    map_point,
    require_browser,
    strokes_measured,
    vertical_stroke,
    wait_for_views,
)

require_browser()

from tests.web.test_a11y import open_detail, serious_violations  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = pytest.mark.browser

OTHER_MODEL = "lenet5"  # a shipped model with an atlas and other layers than the default's
NEIGHBORS = 8
EXAMPLES = 9
ATLAS_ROUTES = (
    "/channels/",
    "/model/classes",
    "/model/embedding",
    "/model/digits/",
    "/model/confusion/",
)
MARGIN = 8  # CSS px round the map's dots (web/js/views/embedding.js)
RING = 7  # CSS px, the radius of the drawing's ring on the map


# ---- fixtures and helpers -----------------------------------------------------------------------


def recorded(app: App) -> App:
    """Record every API request the page makes: (url, JSON body or None), in order."""
    seen: list[tuple[str, Any]] = []
    app.page.asked = seen  # type: ignore[attr-defined]

    def add(request: Any) -> None:
        if "/api/v1/" in request.url:
            body = request.post_data
            is_json = (request.headers.get("content-type") or "").startswith("application/json")
            seen.append((request.url, json.loads(body) if body and is_json else None))

    app.page.on("request", add)
    return app


def asked(page: Page) -> list[tuple[str, Any]]:
    """The API requests `recorded` has seen the page make."""
    return list(page.asked)  # type: ignore[attr-defined]


@pytest.fixture
def aapp(browser: Browser, server_url: str) -> Iterator[App]:
    """A desktop page that records its API requests; no console error or failed request."""
    with app_in(browser, server_url, viewport=DESKTOP) as app:
        yield recorded(app)
        assert not any(app.watch.problems().values()), app.watch.problems()


@pytest.fixture
def aphone(browser: Browser, server_url: str) -> Iterator[App]:
    with app_in(browser, server_url, **PHONE) as app:
        yield recorded(app)
        assert not any(app.watch.problems().values()), app.watch.problems()


def live_bodies(page: Page) -> list[dict[str, Any]]:
    """The bodies of the live predictions (the ones that ask for saliency) the page sent."""
    return [b for u, b in asked(page) if u.endswith("/api/v1/predict") and b and b.get("saliency")]


def is_live_predict(request: Any) -> bool:
    return request.method == "POST" and request.url.endswith("/api/v1/predict")


def drawn_image(page: Page) -> str:
    bodies = live_bodies(page)
    assert bodies, "the page sent no live prediction"
    return str(bodies[-1]["image"])


def api_get(url: str, path: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/v1{path}", params=params, timeout=30.0, trust_env=False)
    assert response.status_code == 200, response.text
    return dict(response.json())


def api_predict(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}/api/v1/predict", json=body, timeout=30.0, trust_env=False)
    assert response.status_code == 200, response.text
    return dict(response.json())


def found(pattern: str, text: str) -> re.Match[str]:
    """The first match of `pattern` in `text`, which must have one."""
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {text!r}"
    return match


def number(text: str) -> float:
    """A number as the page prints it (a true minus sign, maybe an exponent)."""
    return float(text.strip().replace("\u2212", "-"))


def three_digits(shown: str, value: float) -> bool:
    """Whether the page's number (web/js/format.js fmt: 3 significant digits) is `value`."""
    return abs(number(shown) - value) <= 0.0051 * abs(value) + 1e-9


def percent(p: float) -> str:
    """A share as the page prints it (web/js/format.js percent)."""
    tenths = math.floor(p * 1000 + 0.5)
    return "0%" if tenths <= 0 else "100%" if tenths >= 1000 else f"{tenths / 10:.1f}%"


CANVAS_GREY_JS = """
(cv) => {
  const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
  const grey = [];
  for (let i = 0; i < d.length; i += 4) grey.push(d[i]);
  return { w: cv.width, h: cv.height, grey };
}
"""


def canvas_grey(locator: Locator) -> np.ndarray:
    """A canvas's red channel as [h, w] levels 0-255 (the page paints grey)."""
    got = locator.evaluate(CANVAS_GREY_JS)
    return np.asarray(got["grey"], np.float64).reshape(got["h"], got["w"])


def assert_painted(locator: Locator, pixels: Any, what: str, *, varied: bool = True) -> None:
    """The canvas holds exactly these [0, 1] pixels as grey, to the wire's 8-bit rounding
    (`varied`: and they are not all one grey, so a blank canvas cannot pass)."""
    expected = np.asarray(pixels, np.float64) * 255
    shown = canvas_grey(locator)
    assert shown.shape == expected.shape, f"{what}: {shown.shape} != {expected.shape}"
    worst = float(np.abs(shown - expected).max())
    assert worst <= 2.5, f"{what}: a pixel is {worst:.1f} levels off"
    if varied:
        assert expected.max() - expected.min() > 20, f"{what}: the server's image is blank"


PAD_CELLS_JS = """
(cv) => {
  const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
  const out = [];
  for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) {
    const x = Math.floor((c + 0.5) * cv.width / 28);
    const y = Math.floor((r + 0.5) * cv.height / 28);
    out.push(d[(y * cv.width + x) * 4]);
  }
  return out;
}
"""


def pad_cells(page: Page) -> np.ndarray:
    """The pad read at the centre of each of 28 x 28 cells (a loaded digit fills them)."""
    cells = page.get_by_test_id("pad").evaluate(PAD_CELLS_JS)
    return np.asarray(cells, np.float64).reshape(28, 28)


def assert_on_pad(page: Page, url: str, index: int, **params: Any) -> None:
    """Test digit `index` of the atlas is what the pad shows."""
    digit = api_get(url, f"/model/digits/{index}", **params)
    page.wait_for_function(
        "([cv, want]) => { const d = cv.getContext('2d').getImageData("
        "Math.floor(cv.width / 2), Math.floor(cv.height / 2), 1, 1).data;"
        " return Math.abs(d[0] - want) <= 3; }",
        arg=[page.get_by_test_id("pad").element_handle(), round(digit["thumbnail"][14][14] * 255)],
    )
    worst = float(np.abs(pad_cells(page) - np.asarray(digit["thumbnail"]) * 255).max())
    assert worst <= 3, f"the pad is not test digit {index}: a cell is {worst:.0f} levels off"


DIGIT_LABEL = re.compile(r"test digit (\d+), an? (\d)(?: read as (\d))?")


def named_digits(buttons: Locator) -> list[tuple[int, int]]:
    """(index, label) of each digit button, from its accessible name."""
    found = []
    for name in buttons.evaluate_all("bs => bs.map((b) => b.getAttribute('aria-label'))"):
        m = DIGIT_LABEL.search(name)
        assert m, f"a digit button says {name!r}"
        found.append((int(m.group(1)), int(m.group(2))))
    return found


def box_of(locator: Locator) -> list[int]:
    """A highlight box over a 28x28 stage, in input pixels [r0, c0, r1, c1] (inclusive)."""
    assert locator.is_visible(), "the box is not shown"
    style = locator.evaluate(
        "(el) => [el.style.top, el.style.left, el.style.height, el.style.width]"
    )
    top, left, height, width = (float(s.rstrip("%")) * 28 / 100 for s in style)
    return [round(top), round(left), round(top + height) - 1, round(left + width) - 1]


def examples(page: Page) -> Locator:
    return page.get_by_test_id("channel-examples").locator(".digit-btn[data-n]")


# ---- what a filter looks for --------------------------------------------------------------------


def check_filter(
    page: Page, url: str, layer: str, channel: int, kernel: int, pad: str | int, **params: Any
) -> dict[str, Any]:
    """The open detail view of `layer` shows the atlas's examples and ideal input for the channel,
    and boxes the receptive field of its map's highest cell on the drawing (a first conv layer,
    kernel x kernel with stride 1, `pad` 'same', 'valid' or a number of pixels, computed here).
    Returns the server's answer."""
    answer = api_get(url, f"/model/layers/{layer}/channels/{channel}", **params)
    examples(page).nth(EXAMPLES - 1).wait_for()
    assert examples(page).count() == EXAMPLES
    assert named_digits(examples(page)) == [(e["index"], e["label"]) for e in answer["examples"]]
    captions = examples(page).locator(".digit-cap").all_inner_texts()
    for caption, e in zip(captions, answer["examples"], strict=True):
        label, value = caption.split()
        assert int(label) == e["label"], caption
        assert three_digits(value, e["value"]), (caption, e["value"])
    for n, e in enumerate(answer["examples"]):
        # (a patch may be all ink: a filter can answer most to a stroke's inside)
        patch = examples(page).nth(n).locator("canvas")
        assert_painted(patch, e["patch"], f"example {n}", varied=False)
    ideal = page.get_by_test_id("channel-ideal")
    assert_painted(ideal.locator("canvas"), answer["ideal"], "the ideal input")
    assert three_digits(found(r"value (\S+),", ideal.inner_text())[1], answer["ideal_value"])
    # your drawing: the box is the receptive field of the cell the words name, and that cell
    # is the map's highest for the drawing sent (to the 8-bit rounding of the live maps)
    exact = api_predict(url, {"image": drawn_image(page), "activations": True, **params})
    maps = next(np.asarray(lay["data"]) for lay in exact["layers"] if lay["name"] == layer)
    words = page.locator(".fa-yours-text").inner_text()
    where = found(r"row (\d+), col (\d+) of the map, value (\S+)\)", words)
    r, c = int(where[1]), int(where[2])
    channel_map = maps[channel]
    step = (maps.max() - maps.min()) / 255
    assert channel_map[r, c] >= channel_map.max() - 1.01 * step, (r, c, channel_map.max())
    # (the live maps come as 8 bits, so the value said is the exact one to a step of them)
    said = number(where[3])
    assert abs(said - channel_map[r, c]) <= 1.01 * step + 0.005 * abs(said), (said, words)
    before = (kernel - 1) // 2 if pad == "same" else 0 if pad == "valid" else int(pad)
    r0, c0 = r - before, c - before
    expected = [max(0, r0), max(0, c0), min(27, r0 + kernel - 1), min(27, c0 + kernel - 1)]
    assert box_of(page.locator(".fa-yours .rf")) == expected
    return answer


def test_a_filter_shows_its_examples_ideal_input_and_where_your_drawing_excites_it(
    aapp: App, server_url: str
) -> None:
    page = aapp.page
    assert draw_and_wait(page, vertical_stroke()) == "1"
    page.mouse.click(*map_point(page, "conv1", 5))
    page.locator("dialog#detail[open]").wait_for()
    assert "What this filter looks for" in page.get_by_test_id("filter-atlas").inner_text()
    answer = check_filter(page, server_url, "conv1", 5, kernel=3, pad="same")
    # a digit from it goes on the pad, and the page reads it
    examples(page).first.focus()
    with page.expect_request(is_live_predict):
        page.keyboard.press("Enter")
    first = answer["examples"][0]["index"]
    page.locator(".fa-status", has_text=f"Test digit {first}").wait_for()
    assert_on_pad(page, server_url, first)
    page.locator('main[data-state="ready"]').wait_for(state="attached")
    read = api_predict(server_url, {"image": drawn_image(page)})
    page.wait_for_function(  # (an odd test digit can be one the network finds unlike any: "?")
        "s => document.querySelector('[data-testid=prediction]').textContent === s",
        arg=str(read["label"]) if read["is_digit"] else "?",
    )
    # the next channel has its own examples
    page.locator("dialog#detail .next").click()
    page.locator("#detail-title", has_text="channel 6 of").wait_for()
    six = api_get(server_url, "/model/layers/conv1/channels/6")
    page.wait_for_function(
        "i => (document.querySelector('[data-testid=channel-examples] .digit-btn[data-n]') || {})"
        ".ariaLabel?.includes(`test digit ${i},`)",
        arg=six["examples"][0]["index"],
    )
    assert named_digits(examples(page)) == [(e["index"], e["label"]) for e in six["examples"]]
    # a ReLU map after it shows the conv's channel
    page.keyboard.press("Escape")
    open_detail(page, "relu2", 3)
    examples(page).nth(EXAMPLES - 1).wait_for()
    conv2 = api_get(server_url, "/model/layers/conv2/channels/3")
    page.wait_for_function(
        "i => (document.querySelector('[data-testid=channel-examples] .digit-btn[data-n]') || {})"
        ".ariaLabel?.includes(`test digit ${i},`)",
        arg=conv2["examples"][0]["index"],
    )
    assert "relu2 passes on what it finds" in page.locator(".fa-about").inner_text()
    # a dense unit has no such section
    page.keyboard.press("Escape")
    open_detail(page, "fc1", 3)
    assert page.get_by_test_id("filter-atlas").is_hidden()


def test_another_model_has_its_own_atlas_after_a_switch(aapp: App, server_url: str) -> None:
    page = aapp.page
    draw_and_wait(page, vertical_stroke())
    page.get_by_test_id("model-picker").select_option(OTHER_MODEL)
    page.locator(".model-body .stats dd", has_text=OTHER_MODEL).wait_for()
    page.locator('main[data-state="ready"]').wait_for(state="attached")
    described = api_get(server_url, "/model", model=OTHER_MODEL)
    assert described["atlas"] is True
    conv = next(layer for layer in described["layers"] if layer["kind"] == "conv2d")
    kernel = conv["kernel_size"] if isinstance(conv["kernel_size"], int) else conv["kernel_size"][0]
    assert conv.get("stride", 1) in (1, [1, 1])
    page.mouse.click(*map_point(page, conv["name"], 0))
    page.locator("dialog#detail[open]").wait_for()
    check_filter(
        page, server_url, conv["name"], 0, kernel=kernel, pad=conv["padding"], model=OTHER_MODEL
    )
    page.keyboard.press("Escape")
    # the map of digits and the drawing's neighbours are this model's
    expected = api_predict(
        server_url, {"image": drawn_image(page), "neighbors": True, "model": OTHER_MODEL}
    )
    nb = page.get_by_test_id("neighbors").locator(".digit-btn[data-n]")
    page.wait_for_function(
        "i => (document.querySelector('[data-testid=neighbors] .digit-btn[data-n]') || {})"
        ".ariaLabel?.includes(`test digit ${i},`)",
        arg=expected["neighbors"][0]["index"],
    )
    assert named_digits(nb) == [(n["index"], n["label"]) for n in expected["neighbors"]]
    # every atlas request after the switch named the model, and the live predictions asked for
    # the neighbours only once its description said it has an atlas
    requests = asked(page)
    switched = next(i for i, (u, _) in enumerate(requests) if f"model={OTHER_MODEL}" in u)
    for u, _ in requests[switched:]:
        if any(route in u for route in ATLAS_ROUTES):
            assert f"model={OTHER_MODEL}" in u, u
    bodies = [b for b in live_bodies(page) if b.get("model") == OTHER_MODEL]
    assert bodies
    assert all(b.get("neighbors") is True for b in bodies), bodies


# ---- where your drawing sits --------------------------------------------------------------------


RING_JS = """
([cv, x, y]) => {
  // round (x, y) CSS px, at 16 angles: the darkest pixel near radius 7 (the ring's stroke) and
  // the pixel at radius 9.6 (the white band it is drawn on)
  const s = cv.width / cv.getBoundingClientRect().width;
  const ctx = cv.getContext('2d');
  const grey = (px, py, n) => {
    const d = ctx.getImageData(Math.round(px * s) - n, Math.round(py * s) - n, 2 * n + 1,
      2 * n + 1).data;
    let low = 255;
    for (let i = 0; i < d.length; i += 4) low = Math.min(low, (d[i] + d[i + 1] + d[i + 2]) / 3);
    return low;
  };
  const out = [];
  for (let k = 0; k < 16; k++) {
    const [c, sn] = [Math.cos((2 * Math.PI * k) / 16), Math.sin((2 * Math.PI * k) / 16)];
    out.push([grey(x + 7 * c, y + 7 * sn, 1), grey(x + 9.6 * c, y + 9.6 * sn, 0)]);
  }
  return out;
}
"""


def place(stage: Locator, x: float, y: float) -> tuple[float, float]:
    """Where a map point (x, y in [-1, 1], y up) is on the stage, in CSS px from its corner."""
    size = stage.evaluate("el => el.clientWidth")
    span = size - 2 * MARGIN
    return MARGIN + (x + 1) / 2 * span, MARGIN + (1 - y) / 2 * span


def ring_at(page: Page, x: float, y: float) -> bool:
    """Whether the drawing's dark ring is round map point (x, y)."""
    stage = page.get_by_test_id("embedding-map").locator(".emb-stage")
    px, py = place(stage, x, y)
    canvas = stage.locator("canvas").element_handle()
    around = page.evaluate(RING_JS, [canvas, px, py])
    return sum(ring < 90 and halo > 150 for ring, halo in around) >= 13


def map_loaded(page: Page) -> None:
    """Wait until the map of test digits is loaded (its stage names how many it shows)."""
    page.wait_for_function(
        "() => /\\d test digits/.test(document.querySelector('.emb-stage').ariaLabel)"
    )


def wait_neighbours(page: Page, answer: dict[str, Any]) -> Locator:
    """The page's neighbour buttons, once they are the ones of `answer` (a predict answer)."""
    page.wait_for_function(
        "i => (document.querySelector('[data-testid=neighbors] .digit-btn[data-n]') || {})"
        ".ariaLabel?.includes(`test digit ${i},`)",
        arg=answer["neighbors"][0]["index"],
    )
    return page.get_by_test_id("neighbors").locator(".digit-btn[data-n]")


def test_your_drawing_sits_among_its_nearest_digits_and_moves_as_you_draw(
    aapp: App, server_url: str
) -> None:
    page = aapp.page
    card = page.get_by_test_id("embedding-map")
    assert "Draw a digit" in card.locator(".emb-verdict").inner_text()
    assert draw_and_wait(page, vertical_stroke()) == "1"
    assert live_bodies(page)[-1].get("neighbors") is True
    one = api_predict(server_url, {"image": drawn_image(page), "neighbors": True})
    assert len(one["neighbors"]) == NEIGHBORS
    buttons = wait_neighbours(page, one)
    assert named_digits(buttons) == [(n["index"], n["label"]) for n in one["neighbors"]]
    for n, nb in enumerate(one["neighbors"]):
        assert_painted(buttons.nth(n).locator("canvas"), nb["thumbnail"], f"neighbour {n}")
    # the map itself is asked for once the card is near the screen
    card.scroll_into_view_if_needed()
    map_loaded(page)
    assert ring_at(page, one["embedding"]["x"], one["embedding"]["y"])
    labels = [n["label"] for n in one["neighbors"]]
    verdict = card.locator(".emb-verdict").inner_text()
    top = max(set(labels), key=lambda d: (labels.count(d), d == one["label"]))
    if top != one["label"]:
        assert f"It reads your {one['label']} like these {top}s" in verdict, verdict
    else:
        assert f"{labels.count(top)} of the 8" in verdict, verdict
        assert "like its answer" in verdict, verdict
    # a 0 instead: the ring moves to where the server places it
    page.get_by_test_id("clear").click()
    page.locator('main[data-state="idle"]').wait_for(state="attached")
    assert draw_and_wait(page, ellipse()) == "0"
    zero = api_predict(server_url, {"image": drawn_image(page), "neighbors": True})
    wait_neighbours(page, zero)
    assert ring_at(page, zero["embedding"]["x"], zero["embedding"]["y"])
    a, b = one["embedding"], zero["embedding"]
    stage = card.locator(".emb-stage")
    if math.dist(place(stage, a["x"], a["y"]), place(stage, b["x"], b["y"])) > 3 * RING:
        assert not ring_at(page, a["x"], a["y"]), "the ring stayed where the 1 was"
    # a neighbour goes on the pad
    page.get_by_test_id("neighbors").locator(".digit-btn[data-n]").nth(2).click()
    third = zero["neighbors"][2]["index"]
    card.locator(".emb-note", has_text=f"Test digit {third}").wait_for()
    assert_on_pad(page, server_url, third)


def test_the_map_reads_a_dot_on_focus_hover_and_arrow_keys(aapp: App, server_url: str) -> None:
    page = aapp.page
    points = {p["index"]: p for p in api_get(server_url, "/model/embedding")["points"]}
    assert len(points) >= 2000
    card = page.get_by_test_id("embedding-map")
    stage = card.locator(".emb-stage")
    card.scroll_into_view_if_needed()
    map_loaded(page)
    # keyboard: Tab reaches the map; arrows move from dot to dot, each one read out
    page.locator("#teach-ask-help a").focus()  # (just before the card in the tab order)
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('emb-stage')"):
            break
    else:
        pytest.fail("Tab never reached the map of digits")
    seen = set()
    for key in ["ArrowRight", "ArrowRight", "ArrowUp", "ArrowLeft", "ArrowDown"]:
        page.keyboard.press(key)
        words = card.locator(".emb-readout").inner_text()
        m = re.search(r"Test digit (\d+), an? (\d)(?: read as (\d))?", words)
        assert m, words
        index, label = int(m.group(1)), int(m.group(2))
        assert points[index]["label"] == label, (words, points[index])
        read = int(m.group(3)) if m.group(3) else label
        assert points[index]["predicted"] == read, (words, points[index])
        assert card.locator(".emb-tip").inner_text().startswith(str(label))
        seen.add(index)
    assert len(seen) >= 3, f"the arrow keys visited {seen}"
    page.keyboard.press("Enter")
    card.locator(".emb-note", has_text=f"Test digit {index}").wait_for()
    assert_on_pad(page, server_url, index)
    # the pointer: hovering reads the dot nearest to it (of dots a few pixels apart)
    size = stage.evaluate("el => el.clientWidth")
    span = size - 2 * MARGIN
    order = sorted(points)
    xy = np.array([[points[i]["x"], points[i]["y"]] for i in order])
    xy = np.stack([MARGIN + (xy[:, 0] + 1) / 2 * span, MARGIN + (1 - xy[:, 1]) / 2 * span], 1)
    box = stage.bounding_box()
    assert box is not None
    for k in (0, len(order) // 2, len(order) - 1):
        mouse = xy[k] + [1.5, -1.0]  # a little off the dot
        page.mouse.move(box["x"] + mouse[0], box["y"] + mouse[1])
        card.locator(".emb-readout", has_text="Test digit").wait_for()
        read = int(found(r"Test digit (\d+),", card.locator(".emb-readout").inner_text())[1])
        gaps = np.linalg.norm(xy - mouse, axis=1)  # CSS px
        assert gaps[order.index(read)] <= gaps.min() + 0.5, (read, order[k], gaps.min())
    assert card.locator(".emb-tip").is_visible()


def test_the_verdict_says_when_the_neighbours_disagree(aapp: App) -> None:
    """The sentence's rule (web/js/views/embedding.js verdict), for answers made up here."""
    said = aapp.page.evaluate("""async () => {
      const { verdict } = await import('/js/views/embedding.js');
      const nb = (labels) => labels.map((label) => ({ label }));
      return [
        verdict({ label: 4, neighbors: nb([9, 9, 9, 9, 9, 4, 4, 7]) }),
        verdict({ label: 4, neighbors: nb([4, 4, 4, 9, 9, 9, 1, 1]) }),
        verdict({ label: 7, neighbors: nb([7, 7, 7, 7, 7, 7, 1, 7]) }),
        verdict({ label: 3, neighbors: null }),
      ];
    }""")
    assert said[0].startswith("It reads your 4 like these 9s: 5 of the 8"), said[0]
    assert said[1].startswith("3 of the 8"), said[1]  # 4 ties with 9: the answer's side wins
    assert "like these" not in said[1], said[1]
    assert said[2].startswith("7 of the 8"), said[2]
    assert "like its answer" in said[2], said[2]
    assert said[3] == ""


# ---- the model card -----------------------------------------------------------------------------


def test_a_confusion_cell_shows_its_digits_and_puts_one_on_the_pad(
    aapp: App, server_url: str
) -> None:
    page = aapp.page
    assert draw_and_wait(page, vertical_stroke()) == "1"
    input_before = canvas_grey(page.locator('[data-testid="input-view"] .input-canvas'))
    sent_before = drawn_image(page)
    matrix = np.asarray(api_get(server_url, "/model")["metrics"]["confusion_matrix"])
    off = matrix - np.diag(np.diag(matrix))
    truth, predicted = (int(k) for k in np.unravel_index(int(off.argmax()), off.shape))
    cell = page.get_by_test_id(f"confusion-cell-{truth}-{predicted}")
    assert cell.inner_text() == str(matrix[truth, predicted])
    # every count is a button; the matrix is one tab stop and the arrow keys move in it
    assert page.locator(".conf-cell").count() == matrix.size
    assert page.locator('.conf-cell[tabindex="0"]').count() == 1
    page.locator('.conf-cell[tabindex="0"]').focus()
    for key in ["Home"] + ["ArrowDown"] * truth + ["ArrowRight"] * predicted:
        page.keyboard.press(key)
    assert page.evaluate("document.activeElement.dataset.testid") == cell.get_attribute(
        "data-testid"
    )
    assert page.locator('.conf-cell[tabindex="0"]').count() == 1
    page.keyboard.press("Enter")
    page.wait_for_function(
        "b => b.getAttribute('aria-pressed') === 'true'", arg=cell.element_handle()
    )
    answer = api_get(server_url, f"/model/confusion/{truth}/{predicted}")
    assert answer["count"] == matrix[truth, predicted]
    panel = page.get_by_test_id("confusion-digits")
    digits = panel.locator(".digit-btn[data-n]")
    digits.nth(len(answer["digits"]) - 1).wait_for()
    assert digits.count() == len(answer["digits"])
    assert named_digits(digits) == [(d["index"], d["label"]) for d in answer["digits"]]
    assert all(d["label"] == truth and d["predicted"] == predicted for d in answer["digits"])
    shown = digits.locator(".digit-cap").all_inner_texts()
    assert shown == [percent(d["probabilities"][predicted]) for d in answer["digits"]]
    assert f"{truth}s it read as {predicted}" in panel.inner_text()
    assert_painted(
        digits.first.locator("canvas"), answer["digits"][0]["thumbnail"], "its first digit"
    )
    # one goes on the pad, the pad takes the keyboard's attention, and the page reads it
    with page.expect_request(is_live_predict):
        digits.first.click()
    assert_on_pad(page, server_url, answer["digits"][0]["index"])
    page.wait_for_function("() => document.activeElement.dataset.testid === 'pad'")
    assert drawn_image(page) != sent_before
    page.wait_for_function(
        "([cv, before]) => { const d = cv.getContext('2d').getImageData(0, 0, 28, 28).data;"
        " let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s !== before; }",
        arg=[
            page.locator('[data-testid="input-view"] .input-canvas').element_handle(),
            int(input_before.sum()),
        ],
    )
    input_after = canvas_grey(page.locator('[data-testid="input-view"] .input-canvas'))
    assert np.abs(input_after - input_before).max() > 100, "the input the network sees is the same"
    # a count of none says so, and asks the server nothing
    zero = next((i, j) for i in range(10) for j in range(10) if matrix[i, j] == 0)
    asked_before = len(asked(page))
    page.get_by_test_id(f"confusion-cell-{zero[0]}-{zero[1]}").click()
    article = "an" if zero[0] == 8 else "a"
    panel.get_by_text(f"it never read {article} {zero[0]} as").wait_for()
    assert digits.count() == 0
    assert not [u for u, _ in asked(page)[asked_before:] if "/confusion/" in u]
    # another cell: the diagonal's surest ones
    page.get_by_test_id(f"confusion-cell-{truth}-{truth}").click()
    diag = api_get(server_url, f"/model/confusion/{truth}/{truth}")
    panel.locator(".cd-title", has_text=f"{truth}s it read right").wait_for()
    digits.nth(len(diag["digits"]) - 1).wait_for()
    assert named_digits(digits) == [(d["index"], d["label"]) for d in diag["digits"]]
    assert cell.get_attribute("aria-pressed") == "false"


def test_the_ten_class_inputs_and_what_they_mean(aapp: App, server_url: str) -> None:
    page = aapp.page
    box = page.get_by_test_id("class-inputs")
    box.scroll_into_view_if_needed()
    answer = api_get(server_url, "/model/classes")["classes"]
    assert [c["label"] for c in answer] == list(range(10))
    captions = box.locator("figcaption")
    page.wait_for_function(
        "() => ![...document.querySelectorAll('.ci-p')].some((p) => p.textContent === '\u2013')"
    )
    for d, c in enumerate(answer):
        assert captions.nth(d).inner_text() == f"{d} {percent(c['probability'])} sure"
        assert_painted(box.locator("canvas").nth(d), c["image"], f"the class input of {d}")
    text = box.inner_text()
    assert "no person would read" in text, text
    assert "certain" in text, text


# ---- a phone, and a model without an atlas ------------------------------------------------------


def test_a_phone_shows_the_map_the_examples_and_a_cells_digits(
    aphone: App, server_url: str
) -> None:
    page = aphone.page
    before = strokes_measured(page)
    draw_touch(page, vertical_stroke())
    wait_for_views(page, before)
    one = api_predict(server_url, {"image": drawn_image(page), "neighbors": True})
    buttons = wait_neighbours(page, one)
    assert buttons.count() == NEIGHBORS
    for n in range(NEIGHBORS):  # each neighbour is a target a finger can hit
        box = buttons.nth(n).bounding_box()
        assert box is not None
        assert min(box["width"], box["height"]) >= 44, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.touchscreen.tap(*map_point(page, "conv1", 0))
    page.locator("dialog#detail[open]").wait_for()
    examples(page).nth(EXAMPLES - 1).wait_for()
    examples(page).first.scroll_into_view_if_needed()
    assert page.locator("dialog#detail").evaluate("d => d.scrollWidth <= d.clientWidth")
    page.get_by_label("Close details").tap()
    cell = page.get_by_test_id("confusion-cell-4-9")
    cell.scroll_into_view_if_needed()
    cell.tap()
    answer = api_get(server_url, "/model/confusion/4/9")
    digits = page.get_by_test_id("confusion-digits").locator(".digit-btn[data-n]")
    digits.nth(len(answer["digits"]) - 1).wait_for()
    assert serious_violations(page, "phone, a confusion cell open") == []


@pytest.fixture(scope="module")
def bare_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose models folder has the shipped default's weights and no atlas."""
    folder = tmp_path_factory.mktemp("no_atlas")
    weights = folder / "mnist_cnn.npz"  # a copy: the server finds a link's atlas at its target
    shutil.copyfile(SHIPPED_WEIGHTS, weights)
    env = {"CONVSCOPE_MODELS_DIR": str(folder), "CONVSCOPE_DEFAULT_MODEL": "mnist_cnn"}
    with local_server(weights, env=env) as server:
        yield server.url


def test_a_model_without_an_atlas_says_so_and_is_never_asked(
    browser: Browser, bare_url: str
) -> None:
    assert api_get(bare_url, "/model")["atlas"] is False
    with app_in(browser, bare_url, viewport=DESKTOP) as app:
        page = recorded(app).page
        assert draw_and_wait(page, vertical_stroke()) == "1"
        card = page.get_by_test_id("embedding-map")
        assert "no atlas" in card.locator(".emb-empty").inner_text()
        assert card.locator(".emb-empty").is_visible()
        model_card = page.get_by_test_id("model-card")
        model_card.locator(".conf").get_by_text("no atlas").wait_for()
        assert model_card.locator(".conf-cell").count() == 0
        assert "no atlas" in page.get_by_test_id("class-inputs").inner_text()
        page.mouse.click(*map_point(page, "conv1", 0))
        page.locator(
            "dialog#detail[open] .kernel-grid, dialog#detail[open] .kernel"
        ).first.wait_for()
        assert "no atlas" in page.locator(".fa-none").inner_text()
        assert page.locator(".fa-row").is_hidden()
        assert all("neighbors" not in b for b in live_bodies(page))
        assert [u for u, _ in asked(page) if any(r in u for r in ATLAS_ROUTES)] == []
        assert not any(app.watch.problems().values()), app.watch.problems()
