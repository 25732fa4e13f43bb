"""The front end stays small: no build step, no framework, so the shipped bytes are the code."""

from __future__ import annotations

from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
BUDGET_BYTES = 100 * 1000  # web/js + web/css, uncompressed


def test_js_and_css_fit_in_100_kb() -> None:
    files = [p for d in ("js", "css") for p in sorted((WEB / d).rglob("*")) if p.is_file()]
    assert any(p.suffix == ".js" for p in files)
    assert any(p.suffix == ".css" for p in files)
    sizes = {str(p.relative_to(WEB)): p.stat().st_size for p in files}
    total = sum(sizes.values())
    print(f"\nweb/js + web/css: {total} bytes in {len(sizes)} files")
    assert total <= BUDGET_BYTES, f"{total} bytes > {BUDGET_BYTES}: {sizes}"
