"""The front end stays small: no build step, no framework, so the shipped bytes are the code."""

from __future__ import annotations

import gzip
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
# What a visitor downloads: the server compresses every file, and readable code compresses ~3x.
BUDGET_BYTES = 120 * 1000  # web/js + web/css, each file gzip-compressed (60 KB before the
# model picker, compare mode and Train view; 80 KB before the detail view became nine modules,
# which costs ~4 KB of per-file compression and import lines, not code; 84 KB before Teach it,
# issue 19: its controller, three views and their styles, ~15 KB; 100 KB before the atlas,
# issue 20: its controller, five views and their styles, ~14 KB, and ~3 KB more in api.js,
# main.js and the model card)


def test_js_and_css_fit_in_the_budget() -> None:
    files = [p for d in ("js", "css") for p in sorted((WEB / d).rglob("*")) if p.is_file()]
    assert any(p.suffix == ".js" for p in files)
    assert any(p.suffix == ".css" for p in files)
    sizes = {str(p.relative_to(WEB)): len(gzip.compress(p.read_bytes())) for p in files}
    total = sum(sizes.values())
    raw = sum(p.stat().st_size for p in files)
    print(f"\nweb/js + web/css: {total} bytes gzip-compressed ({raw} raw) in {len(sizes)} files")
    assert total <= BUDGET_BYTES, f"{total} bytes > {BUDGET_BYTES}: {sizes}"
