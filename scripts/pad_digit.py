#!/usr/bin/env python3
"""A digit drawn like the page's pad exports it, and the predict body that sends it.

The pad (web/js/views/pad.js) paints round-capped white strokes, 22 px wide by default, on an
opaque black 280x280 canvas and sends `canvas.toDataURL('image/png')`: an anti-aliased RGBA PNG,
which Chromium writes with the Up filter on every row and zlib's fastest level; so does this
(tests/web/test_pad_png.py checks it against the page's own). Pillow draws without
anti-aliasing, so the strokes are drawn 4x larger and box-filtered down.

    python scripts/pad_digit.py > body.json            # uint8 encoding, with activations
    python scripts/pad_digit.py --png digit.png        # the PNG alone
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 280  # the pad's export size
BRUSH = 22  # the pad's default brush, px on a 280-px pad
SUPERSAMPLE = 4

# A "3" as two strokes of points in [0, 1], the way a hand would move a pointer.
Stroke = list[tuple[float, float]]


def _arc(cx: float, cy: float, r: float, start: float, end: float, steps: int = 24) -> Stroke:
    """Points on a circle from angle `start` to `end` (degrees, clockwise on screen)."""
    return [
        (
            cx + r * math.cos(math.radians(start + (end - start) * i / steps)),
            cy + r * math.sin(math.radians(start + (end - start) * i / steps)),
        )
        for i in range(steps + 1)
    ]


THREE: list[Stroke] = [_arc(0.48, 0.33, 0.16, -160, 90), _arc(0.48, 0.65, 0.18, -90, 160)]


def pad_image(strokes: list[Stroke] = THREE, brush: int = BRUSH) -> Image.Image:
    """White round-capped strokes on opaque black, anti-aliased, RGBA like a canvas export."""
    big = SIZE * SUPERSAMPLE
    width = brush * SUPERSAMPLE
    img = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(img)
    for stroke in strokes:
        points = [(x * big, y * big) for x, y in stroke]
        pen.line(points, fill=255, width=width, joint="curve")
        for x, y in (points[0], points[-1]):  # round caps
            pen.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)
    gray = img.resize((SIZE, SIZE), Image.Resampling.BOX)
    return Image.merge("RGBA", (gray, gray, gray, Image.new("L", gray.size, 255)))


def canvas_png(image: Image.Image) -> bytes:
    """RGBA PNG bytes as Chromium's toDataURL writes them: every row Up-filtered, zlib level 1."""
    pixels = np.asarray(image.convert("RGBA"))
    height, width, _ = pixels.shape
    lines = pixels.reshape(height, width * 4)
    up = np.diff(lines, axis=0, prepend=np.uint8(0))  # (H, 4W): each row minus the one above
    rows = np.hstack([np.full((height, 1), 2, np.uint8), up])  # filter type 2 (Up) first
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    stream = zlib.compress(rows.tobytes(), 1)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def pad_png() -> bytes:
    """The default digit as PNG bytes, as the page would send it."""
    return canvas_png(pad_image())


def predict_body(encoding: str = "uint8", *, activations: bool = True) -> dict[str, object]:
    """The JSON body the page sends for the digit (a data URL, as the page sends it)."""
    url = "data:image/png;base64," + base64.b64encode(pad_png()).decode("ascii")
    return {"image": url, "activations": activations, "encoding": encoding}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--png", type=Path, help="write the PNG here instead of a JSON body")
    parser.add_argument("--encoding", default="uint8", choices=["list", "base64", "uint8"])
    args = parser.parse_args(argv)
    if args.png:
        args.png.write_bytes(pad_png())
    else:
        sys.stdout.write(json.dumps(predict_body(args.encoding)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
