"""web/js/api.js decodes every wire encoding of docs/api-contract.md into what numpy says the array
is: run in the real page (its own module, imported there) on arrays built here with numpy."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from tests.web.browser_kit import (
    App,
    draw_and_wait,
    require_browser,
    vertical_stroke,
)

require_browser()

pytestmark = pytest.mark.browser

# JS: decodeArray on each wire array; {shape, data: [...]} or {error: message} for each
DECODE_JS = """
async (wires) => {
  const api = await import('/js/api.js');
  return wires.map((w) => {
    try {
      const { shape, data } = api.decodeArray(w);
      return { shape, data: Array.from(data), type: data.constructor.name };
    } catch (err) {
      return { error: `${err.name}: ${err.message}` };
    }
  });
}
"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def as_uint8(a: np.ndarray) -> dict[str, Any]:
    """The contract's "uint8" float array: offset = min, scale = (max - min) / 255, rounded."""
    lo, hi = float(a.min()), float(a.max())
    scale = (hi - lo) / 255
    q = np.zeros(a.shape, np.uint8) if scale == 0 else np.rint((a - lo) / scale).astype(np.uint8)
    return {
        "dtype": "uint8",
        "shape": list(a.shape),
        "data": b64(q.tobytes()),
        "scale": scale,
        "offset": lo,
    }


def as_bits(mask: np.ndarray) -> dict[str, Any]:
    """The contract's "bit" mask: numpy.packbits of the flat mask, first element in the MSB."""
    return {
        "dtype": "bit",
        "shape": list(mask.shape),
        "data": b64(np.packbits(mask.ravel()).tobytes()),
    }


def packed(a: np.ndarray, dtype: str) -> dict[str, Any]:
    """The "base64" encoding: little-endian C-order bytes of the array as dtype."""
    data = np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": np.dtype(dtype).name, "shape": list(a.shape), "data": b64(data.tobytes())}


def decode(app: App, wires: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(app.page.evaluate(DECODE_JS, json.loads(json.dumps(wires))))


def test_uint8_and_bits_and_base64_decode_to_numpys_arrays(app: App) -> None:
    rng = np.random.default_rng(8)
    maps = (rng.standard_normal((3, 5, 7)) * 4).astype(np.float32)  # signed, like conv
    relu = np.maximum(maps, 0)  # many exact zeros
    constant = np.full((2, 3), 0.25, np.float32)  # scale 0
    mask = rng.random((2, 5, 7)) < 0.3  # 70 cells: the last byte is partly padding
    half = (rng.standard_normal((4, 4)) * 100).astype(np.float16)
    single = rng.standard_normal(9).astype(np.float32)
    wires = [
        as_uint8(maps),
        as_uint8(relu),
        as_uint8(constant),
        as_bits(mask),
        packed(mask.astype(np.uint8), "u1"),  # masks in "base64": uint8 without scale
        packed(half, "f2"),
        packed(single, "f4"),
    ]
    out = decode(app, wires)
    assert [o.get("error") for o in out] == [None] * len(wires)
    for wire, o in zip(wires, out, strict=True):
        assert o["shape"] == wire["shape"]

    for wire, source, o in zip(wires[:3], (maps, relu, constant), out[:3], strict=True):
        assert o["type"] == "Float32Array"
        got = np.array(o["data"], np.float32).reshape(source.shape)
        q = np.frombuffer(base64.b64decode(wire["data"]), np.uint8).reshape(source.shape)
        want = np.float32(wire["offset"]) + np.float32(wire["scale"]) * q.astype(np.float32)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        # and that is the original to within half a quantisation step
        assert np.abs(got - source).max() <= wire["scale"] / 2 + 1e-5
    assert np.array(out[1]["data"]).min() == 0.0  # ReLU zeros stay exactly zero
    assert out[2]["data"] == [0.25] * 6

    for o in out[3:5]:
        assert o["type"] == "Uint8Array"
        np.testing.assert_array_equal(np.array(o["data"]).reshape(mask.shape), mask.astype(int))
    np.testing.assert_array_equal(
        np.array(out[5]["data"], np.float32), half.astype(np.float32).ravel()
    )
    np.testing.assert_array_equal(np.array(out[6]["data"], np.float32), single)


def test_malformed_arrays_are_errors_in_words(app: App) -> None:
    bits = as_bits(np.ones((2, 9), bool))  # 18 bits: 3 bytes
    short = {**bits, "data": b64(b"\xff\xff")}
    scale_nan = {**as_uint8(np.arange(6, dtype=np.float32)), "scale": None, "offset": 1.0}
    too_few = {**as_uint8(np.arange(6, dtype=np.float32)), "shape": [7]}
    unknown = {"dtype": "int64", "shape": [1], "data": b64(bytes(8))}
    out = decode(app, [short, scale_nan, too_few, unknown])
    errors = [o.get("error") or "" for o in out]
    assert all(e.startswith("ApiError: ") for e in errors), errors
    assert "2 bytes of bits for 18 values" in errors[0]
    assert "scale null" in errors[1]
    assert "6 values for an array of shape [7]" in errors[2]
    assert '"int64"' in errors[3]


def test_a_server_without_uint8_gets_base64_from_then_on(app: App) -> None:
    """Servers older than the "uint8" encoding answer 422 naming it: the page asks again with
    "base64" once, and keeps to it. (A stand-in for such a server answers here; every other
    request reaches the real one.)"""
    page = app.page
    asked: list[str] = []

    def old_server(route: Any) -> None:
        encoding = json.loads(route.request.post_data or "{}").get("encoding")
        asked.append(encoding)
        if encoding not in ("list", "base64"):
            detail = "encoding: Input should be 'list' or 'base64'"
            route.fulfill(status=422, json={"detail": detail})
        else:
            route.continue_()

    page.route("**/api/v1/predict", old_server)
    assert draw_and_wait(page, vertical_stroke()) == "1"
    assert asked[:2] == ["uint8", "base64"]
    assert set(asked[2:]) <= {"base64"}
    assert page.locator('[data-testid="layer-conv1"]:not(.empty)').count() == 1
