"""Take the README screenshots: start the app, draw a digit on the pad, save PNGs of the page.

    .venv/bin/python scripts/screenshot.py                # docs/screenshot.png (1400x1000)
    .venv/bin/python scripts/screenshot.py --phone        # and docs/screenshot-phone.png
    .venv/bin/python scripts/screenshot.py --full-page    # the whole page, not the first screen

Needs Playwright (the dev extra) and Chromium at /usr/bin/chromium (or --chromium). Serves the
shipped weights (or --weights) with uvicorn on 127.0.0.1 and a free port; no other traffic.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from server.cli.local_server import local_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
TIMEOUT_MS = 30_000
MAX_PNG_BYTES = 400 * 1024

Points = Sequence[tuple[float, float]]  # fractions of the pad's width and height


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> Points:
    """Points on an elliptical arc, angles in degrees, y pointing down (screen coordinates)."""
    n = max(8, int(abs(end - start) / 6))
    return [
        (
            cx + rx * math.cos(math.radians(start + (end - start) * i / n)),
            cy + ry * math.sin(math.radians(start + (end - start) * i / n)),
        )
        for i in range(n + 1)
    ]


# A "3": two strokes, each a bowl opening to the left, meeting in the middle.
THREE = [arc(0.48, 0.33, 0.17, 0.14, -155, 90), arc(0.48, 0.62, 0.19, 0.17, -90, 150)]


def draw(page: Page, strokes: Sequence[Points], touch: bool) -> str:
    """Draw the strokes on the pad (mouse, or real touch input), wait for the views; the digit."""
    pad = page.get_by_test_id("pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None

    def at(p: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + p[0] * box["width"], box["y"] + p[1] * box["height"]

    cdp = page.context.new_cdp_session(page) if touch else None
    for points in strokes:
        before = page.evaluate("performance.getEntriesByName('stroke-to-views').length")
        if cdp is not None:
            for kind, p in [("touchStart", points[0])] + [("touchMove", q) for q in points[1:]]:
                x, y = at(p)
                cdp.send(
                    "Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]}
                )
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        else:
            page.mouse.move(*at(points[0]))
            page.mouse.down()
            for p in points[1:]:
                page.mouse.move(*at(p))
            page.mouse.up()
        page.wait_for_function(
            "n => performance.getEntriesByName('stroke-to-views').length > n", arg=before
        )
    page.locator('main[data-state="ready"]').wait_for(state="attached")
    if touch:
        page.mouse.move(0, 0)  # no hover state left on a map
    return page.get_by_test_id("prediction").inner_text()


def shoot(browser: Browser, url: str, out: Path, *, phone: bool, full_page: bool) -> None:
    if phone:
        context = browser.new_context(
            viewport={"width": 375, "height": 812},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
        )
    else:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + "/")
        page.locator('[data-testid="model-card"] .stats').wait_for()  # model card rendered
        digit = draw(page, THREE, touch=phone)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(out), full_page=full_page, animations="disabled")
        size = out.stat().st_size
        print(f"{out}: {size / 1024:.0f} KB, the network reads {digit!r}")
        if size > MAX_PNG_BYTES:
            print(f"warning: {out.name} is over {MAX_PNG_BYTES // 1024} KB", file=sys.stderr)
    finally:
        context.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, default=ROOT / "model_weights" / "mnist_cnn.npz")
    ap.add_argument("--chromium", type=Path, default=Path("/usr/bin/chromium"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    ap.add_argument("--phone", action="store_true", help="also docs/screenshot-phone.png")
    ap.add_argument("--full-page", action="store_true", help="the whole page, not one screen")
    args = ap.parse_args()
    if not args.weights.is_file():
        raise SystemExit(f"no weights at {args.weights}: train first (make train)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SystemExit("playwright is missing: pip install -e '.[dev]'") from None

    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with local_server(args.weights) as server, sync_playwright() as p:
        url = server.url
        browser = p.chromium.launch(
            executable_path=str(args.chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            shoot(browser, url, out, phone=False, full_page=args.full_page)
            if args.phone:
                phone_out = out.with_name(out.stem + "-phone" + out.suffix)
                shoot(browser, url, phone_out, phone=True, full_page=args.full_page)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
