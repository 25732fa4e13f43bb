"""The PNG the pad really sends takes the server's fast decoding path, and the benchmark's
stand-in for it (scripts/pad_digit.py) is encoded the same way, so wrk measures what the page
costs the server."""

from __future__ import annotations

import base64
import io
import json
import zlib

import numpy as np
import pytest
from PIL import Image

from scripts.pad_digit import pad_png
from server import preprocess
from server.preprocess import png
from tests.web.browser_kit import App, draw_mouse, ellipse, require_browser

require_browser()

pytestmark = pytest.mark.browser


def row_filters(data: bytes) -> set[int]:
    """The filter type of every row of an 8-bit RGBA PNG, read with the standard library."""
    plain = png.parse(data)
    assert plain is not None, "not a plain 8-bit RGBA or gray PNG"
    raw = zlib.decompress(plain.stream)
    stride = 1 + plain.width * plain.samples
    return {raw[r * stride] for r in range(plain.height)}


def test_the_pads_png_is_decoded_without_pillow_and_as_pillow_would(app: App) -> None:
    page = app.page
    with page.expect_request(lambda r: r.url.endswith("/api/v1/predict")) as sent:
        draw_mouse(page, ellipse())
    url = json.loads(sent.value.post_data or "{}")["image"]
    data = base64.b64decode(url.split(",", 1)[1])
    plain = png.parse(data)
    assert plain is not None, "the pad's PNG is not the plain kind the fast path reads"
    decoded = plain.gray()
    assert decoded is not None, "the pad's PNG has filters or colours the fast path leaves"
    with Image.open(io.BytesIO(data)) as img:
        np.testing.assert_array_equal(decoded[0], np.asarray(img.convert("L")))
    np.testing.assert_array_equal(preprocess.decode(data), decoded[0])
    # scripts/pad_digit.py writes its stand-in the same way: same size, colour type, filters
    stand_in = png.parse(pad_png())
    assert stand_in is not None
    assert (stand_in.size, stand_in.samples) == (plain.size, plain.samples)
    assert row_filters(pad_png()) == row_filters(data)
