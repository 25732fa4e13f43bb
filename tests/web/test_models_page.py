"""The page with several models, in real Chromium against a server with a folder of them: the
picker (kept in the URL), every architecture's layers drawn, every request naming the model, the
receptive field of stride-2 convolutions, and compare mode on a desktop and on a phone.

The models are small untrained networks built here (fast, deterministic) beside the shipped
default; what each shows is checked against the server's own answers for the same image.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest

from server.cli.local_server import local_server
from server.cnn import architectures
from server.cnn.layers import AvgPool2D, BatchNorm, Conv2D, Dense, Flatten, ReLU, Sigmoid, Tanh
from server.cnn.model import Sequential
from server.cnn.serialize import save_model
from tests.web.browser_kit import (
    DESKTOP,
    SHIPPED_WEIGHTS,
    TIMEOUT_MS,
    Watch,
    draw_and_wait,
    ellipse,
    require_browser,
)
from tests.web.test_a11y import serious_violations
from tests.web.test_browser import PANELS_JS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

require_browser()

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}


# ---- the models ------------------------------------------------------------------------------


def mlp() -> Sequential:
    """No convolution at all: flatten -> dense -> ReLU -> dense."""
    rng = np.random.default_rng(1)
    return Sequential(
        [
            Flatten("flatten"),
            Dense("fc1", 784, 32, rng=rng),
            ReLU("relu1"),
            Dense("fc2", 32, 10, rng=rng),
        ],
        input_shape=(28, 28, 1),
    )


def strided() -> Sequential:
    """Three conv blocks with stride 2 and no pooling: 28 -> 14 -> 7 -> 4."""
    rng = np.random.default_rng(2)
    return Sequential(
        [
            Conv2D("conv1", 1, 6, 3, stride=2, padding="same", rng=rng),
            ReLU("relu1"),
            Conv2D("conv2", 6, 8, 3, stride=2, padding="same", rng=rng),
            ReLU("relu2"),
            Conv2D("conv3", 8, 8, 3, stride=2, padding="same", rng=rng),
            ReLU("relu3"),
            Flatten("flatten"),
            Dense("fc1", 4 * 4 * 8, 10, rng=rng),
        ],
        input_shape=(28, 28, 1),
    )


def normed() -> Sequential:
    """LeNet's shape with batch norm: 5x5 valid conv, batch norm, tanh, average pooling, sigmoid."""
    rng = np.random.default_rng(3)
    return Sequential(
        [
            Conv2D("conv1", 1, 6, 5, padding="valid", rng=rng),
            BatchNorm("bn1", 6),
            Tanh("tanh1"),
            AvgPool2D("avg1", 2),
            Conv2D("conv2", 6, 8, 3, padding="same", rng=rng),
            Sigmoid("sig2"),
            AvgPool2D("avg2", 2),
            Flatten("flatten"),
            Dense("fc1", 6 * 6 * 8, 16, rng=rng),
            BatchNorm("bn3", 16),
            Tanh("tanh3"),
            Dense("fc2", 16, 10, rng=rng),
        ],
        input_shape=(28, 28, 1),
    )


def models() -> dict[str, Sequential]:
    """Every architecture the page must draw; the engine's presets when it has them."""
    nets = {"mlp": mlp(), "strided": strided(), "normed": normed()}
    for name in ("tiny", "lenet5"):
        if name in architectures.PRESETS:
            nets[name] = architectures.build_preset(name, seed=3)
    return nets


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped models (mnist_cnn, mlp, tiny, lenet5) as they are served, and untrained nets
    of the shapes nothing ships (or of a shipped one's shape, while its file is missing)."""
    folder = tmp_path_factory.mktemp("models")
    (folder / "mnist_cnn.npz").symlink_to(SHIPPED_WEIGHTS.resolve())
    for name, net in models().items():
        shipped = SHIPPED_WEIGHTS.parent / f"{name}.npz"
        if shipped.is_file():
            (folder / f"{name}.npz").symlink_to(shipped.resolve())
        else:
            save_model(folder / f"{name}.npz", net, {"note": "untrained, for the browser tests"})
    return folder


@pytest.fixture(scope="module")
def url(models_dir: Path) -> Iterator[str]:
    env = {"CONVSCOPE_MODELS_DIR": str(models_dir), "CONVSCOPE_DEFAULT_MODEL": "mnist_cnn"}
    with local_server(SHIPPED_WEIGHTS, env=env) as server:
        yield server.url


def api_model(url: str, name: str) -> dict[str, Any]:
    """GET /api/v1/model?model=NAME straight from the server (not through the page)."""
    response = httpx.get(f"{url}/api/v1/model", params={"model": name}, timeout=10, trust_env=False)
    response.raise_for_status()
    return dict(response.json())


# ---- the page --------------------------------------------------------------------------------


class Requests:
    """The page's API requests: (url, JSON body or None), in order."""

    def __init__(self, page: Page) -> None:
        self.seen: list[tuple[str, Any]] = []
        page.on("request", self._add)

    def _add(self, request: Any) -> None:
        if "/api/v1/" not in request.url:
            return
        body = request.post_data
        is_json = body and (request.headers.get("content-type") or "").startswith(
            "application/json"
        )
        self.seen.append((request.url, json.loads(body) if is_json else None))

    def predict_bodies(self) -> list[dict[str, Any]]:
        return [b for u, b in self.seen if u.endswith("/api/v1/predict") and b]


def open_page(browser: Browser, url: str, query: str = "", viewport: dict[str, int] = DESKTOP):
    """A page at /?query with its layers built, and what it noticed and asked."""
    context = browser.new_context(
        viewport=viewport, **({"is_mobile": True, "has_touch": True} if viewport == PHONE else {})
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    watch = Watch(origin=url)
    watch.attach(page)
    asked = Requests(page)
    page.goto(f"{url}/{query}")
    page.locator('[data-testid="layer-softmax"]').wait_for(state="attached")
    return context, page, watch, asked


@pytest.fixture
def page_at(browser: Browser, url: str) -> Iterator[Any]:
    contexts = []

    def opener(query: str = "", viewport: dict[str, int] = DESKTOP) -> tuple[Page, Watch, Requests]:
        context, page, watch, asked = open_page(browser, url, query, viewport)
        contexts.append(context)
        return page, watch, asked

    yield opener
    for context in contexts:
        context.close()


def server_answer(url: str, image: str, model: str) -> dict[str, Any]:
    body = {"image": image, "model": model}
    response = httpx.post(f"{url}/api/v1/predict", json=body, timeout=10, trust_env=False)
    response.raise_for_status()
    return dict(response.json())


def shown(answer: dict[str, Any]) -> str:
    """What the page's big digit says for an answer: its label, or "?" when the server says the
    drawing does not look like a digit (untrained test models are rarely sure)."""
    return str(answer["label"]) if answer["is_digit"] else "?"


def layers_on_page(page: Page) -> list[dict[str, Any]]:
    for section in page.locator('[data-testid^="layer-"]').all():
        section.scroll_into_view_if_needed()  # (panels are painted once laid out)
    return list(page.locator('[data-testid^="layer-"]').evaluate_all(PANELS_JS))


def blank_panels(panels: list[dict[str, Any]]) -> list[str]:
    blank = []
    for p in panels:
        colours = p["tiles"]["colours"] if p["tiles"] else p["canvases"]
        if p["empty"] or not (any(n > 1 for n in colours) or p["cells"] > 1):
            blank.append(f"{p['name']} ({p['kind']}): {p}")
    return blank


# ---- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp", "strided", "normed", "tiny", "lenet5"])
def test_each_architecture_draws_every_layer_and_names_its_model(
    page_at: Any, url: str, name: str
) -> None:
    if name not in models():
        pytest.skip(f"the engine has no {name!r} preset yet")
    page, watch, asked = page_at(f"?model={name}")
    draw_and_wait(page, ellipse())
    described = api_model(url, name)
    panels = layers_on_page(page)
    assert [p["name"] for p in panels] == [layer["name"] for layer in described["layers"]]
    assert not blank_panels(panels), "blank layer panels:\n" + "\n".join(blank_panels(panels))
    assert page.get_by_test_id("model-picker").input_value() == name
    assert f"?model={name}" in page.url
    # the answer shown is this model's for the image the page sent
    image = asked.predict_bodies()[-1]["image"]
    assert page.get_by_test_id("prediction").inner_text() == shown(server_answer(url, image, name))
    # open a layer's detail view: its weights are this model's too
    first = next(p for p in panels if p["kind"] in ("conv2d", "dense"))
    page.get_by_test_id(f"layer-{first['name']}").locator('[role="application"]').press("Enter")
    page.locator("#detail[open] .detail-extra").get_by_text("weights").first.wait_for()
    page.keyboard.press("Escape")
    has_conv = any(p["kind"] == "conv2d" for p in panels)
    note = page.locator(".layers-note").inner_text()
    assert ("no convolution" in note) == (not has_conv), note
    # every request after the page loaded named the model
    for request_url, body in asked.seen:
        if request_url.endswith("/api/v1/models"):
            continue
        named = (body or {}).get("model") == name or f"model={name}" in request_url
        assert named, f"{request_url} {str(body)[:80]} does not name {name}"
    assert not any(watch.problems().values()), watch.problems()


def test_picker_changes_the_url_the_model_card_and_the_prediction(page_at: Any, url: str) -> None:
    page, watch, asked = page_at()
    assert page.get_by_test_id("model-picker").input_value() == "mnist_cnn"  # the default
    draw_and_wait(page, ellipse())
    image = asked.predict_bodies()[-1]["image"]
    page.get_by_test_id("model-picker").select_option("mlp")
    page.wait_for_url("**/?model=mlp")
    page.locator('[data-testid="layer-fc2"]').wait_for()
    page.locator('main[data-state="ready"]').wait_for(state="attached")
    mlp_answer = server_answer(url, image, "mlp")
    page.wait_for_function(
        "p => [...document.querySelectorAll('[data-testid=probabilities] li')]"
        ".every((li, d) => li.getAttribute('aria-label').startsWith(d + ': ')) &&"
        " document.querySelector('[data-testid=prediction]').textContent === p",
        arg=shown(mlp_answer),
    )
    assert asked.predict_bodies()[-1] == {**asked.predict_bodies()[-1], "model": "mlp"}
    assert page.locator('[data-testid="layer-conv1"]').count() == 0
    page.locator("#model-card").get_by_text("mlp", exact=True).wait_for()
    # a link opens the same view
    page.reload()
    page.locator('[data-testid="layer-fc2"]').wait_for(state="attached")
    assert page.get_by_test_id("model-picker").input_value() == "mlp"
    assert not any(watch.problems().values()), watch.problems()


def test_a_name_not_on_the_list_is_shown_as_such_and_said_plainly(page_at: Any) -> None:
    page, watch, _ = page_at("?model=mnist_cnn")
    page.evaluate(
        "async () => (await import('/js/state.js')).setState({ modelName: 'training:nope' })"
    )
    page.wait_for_url("**/?model=training%3Anope")
    picker = page.get_by_test_id("model-picker")
    assert picker.input_value() == "training:nope"
    assert "a training run" in picker.locator("option:checked").inner_text()
    card = page.get_by_test_id("model-card")
    card.locator(".error-text").wait_for()
    assert "no training 'nope' in this server process" in card.inner_text()  # the server's words
    # the only failures were the ones for the unknown name
    assert all("training" in bad for bad in watch.bad_responses), watch.bad_responses


RECEPTIVE_JS = """
async ([layers, cells]) => {
  const { receptiveField } = await import('/js/receptive.js');
  return cells.map(([i, r, c]) => {
    const f = receptiveField(layers, i, r, c);
    return [f.r0, f.c0, f.r1, f.c1];
  });
}
"""


def influence_box(net: Sequential, layer: int, r: int, c: int) -> list[int]:
    """The input pixels that move output cell (r, c) of a layer, found by changing each pixel
    in turn (positive weights and no ReLU between, so nothing cancels)."""
    convs = [lay for lay in net.layers[: layer + 1] if isinstance(lay, Conv2D)]
    probe = Sequential(convs, input_shape=(28, 28, 1))
    for conv in convs:
        conv.params["weight"][...] = 1.0 + np.abs(conv.params["weight"])
    base = np.zeros((784, 28, 28, 1), np.float32)
    base[np.arange(784), np.arange(784) // 28, np.arange(784) % 28, 0] = 1.0  # (784, 28, 28, 1)
    out = probe.forward(base)[:, r, c, :].sum(axis=1) - probe.forward(base[:1] * 0)[0, r, c].sum()
    rows, cols = np.nonzero(np.abs(out).reshape(28, 28) > 1e-6)
    return [int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())]


def test_receptive_fields_of_stride_2_convolutions(page_at: Any, url: str) -> None:
    page, _, _ = page_at("?model=strided")
    layers = api_model(url, "strided")["layers"]
    net = strided()
    cells = [
        (i, r, c)
        for i, layer in enumerate(layers)
        if layer["kind"] == "conv2d"
        for r, c in [(0, 0), (1, 2), (layer["output_shape"][1] - 1,) * 2]
    ]
    got = page.evaluate(RECEPTIVE_JS, [layers, cells])
    want = [influence_box(net, i, r, c) for i, r, c in cells]
    assert got == want


def compare_columns(page: Page) -> list[dict[str, float]]:
    page.locator('[data-testid="compare-column"]').nth(1).wait_for()
    page.locator('[data-testid="compare-view"] .cmp-status:text-is("")').wait_for(state="attached")
    return [
        col.bounding_box() or {} for col in page.locator('[data-testid="compare-column"]').all()
    ]


def test_compare_mode_shows_both_answers_side_by_side(page_at: Any, url: str) -> None:
    page, watch, asked = page_at("?model=mnist_cnn")
    draw_and_wait(page, ellipse())
    page.get_by_test_id("compare-toggle").press("Enter")  # (the keyboard opens it)
    view = page.get_by_test_id("compare-view")
    view.get_by_test_id("compare-picker").select_option("strided")
    page.wait_for_url("**/?model=mnist_cnn&compare=strided")
    left, right = compare_columns(page)
    assert abs(left["y"] - right["y"]) < 1
    assert right["x"] > left["x"] + left["width"] - 1
    image = asked.predict_bodies()[-1]["image"]
    shown = view.get_by_test_id("compare-prediction").all_inner_texts()
    want = [str(server_answer(url, image, m)["label"]) for m in ("mnist_cnn", "strided")]
    assert shown == want
    # each column lists its model's layers, each drawn
    for col, name in zip(view.locator('[data-testid="compare-column"]').all(), want, strict=True):
        assert col.locator("canvas").count() == col.locator("li").count() > 3, name
    names = view.locator('[data-testid="compare-column"]').nth(1).locator(".cmp-name")
    assert names.all_inner_texts() == [la["name"] for la in api_model(url, "strided")["layers"]]
    assert len(view.locator("tbody tr").all()) == 10
    assert not serious_violations(page, "compare view")
    page.get_by_test_id("compare-toggle").click()
    assert view.is_hidden()
    assert page.locator("#layers").is_visible()
    assert not any(watch.problems().values()), watch.problems()


def test_compare_mode_stacks_on_a_phone(page_at: Any, url: str) -> None:
    page, watch, _ = page_at("?model=mlp&compare=strided", viewport=PHONE)
    page.get_by_test_id("compare-view").wait_for()
    draw_and_wait(page, ellipse())
    top, bottom = compare_columns(page)
    assert abs(top["x"] - bottom["x"]) < 1
    assert bottom["y"] >= top["y"] + top["height"]
    assert top["x"] + top["width"] <= PHONE["width"]
    assert not serious_violations(page, "compare view on a phone")
    assert not any(watch.problems().values()), watch.problems()


def test_picker_passes_axe_with_a_network_without_convolutions(page_at: Any) -> None:
    page, _, _ = page_at("?model=mlp")
    draw_and_wait(page, ellipse())
    assert not serious_violations(page, "?model=mlp")
