"""/docs: Swagger UI from this server's own files, under a policy that allows exactly them.

The real-browser check (the page renders, with no policy violation) is in
tests/web/test_csp.py; here, the HTML, its policy and its assets over HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient


class PageParts(HTMLParser):
    """The URLs a page loads (script src, link href) and its inline scripts' text."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (tag, url)
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append((tag, str(found["src"])))
        elif tag == "script":
            self._in_inline_script = True
            self.inline_scripts.append("")
        elif tag == "link" and found.get("href"):
            self.urls.append((tag, str(found["href"])))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline_scripts[-1] += data


@pytest.fixture(scope="module")
def docs(client: TestClient) -> tuple[str, dict[str, str], PageParts]:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parts = PageParts()
    parts.feed(response.text)
    return response.text, dict(response.headers), parts


def directives(policy: str) -> dict[str, list[str]]:
    return {name: rest for name, *rest in (part.split() for part in policy.split(";"))}


def test_docs_load_nothing_from_another_origin(
    docs: tuple[str, dict[str, str], PageParts],
) -> None:
    html, _, parts = docs
    assert parts.urls, "the page loads no assets?"
    for tag, url in parts.urls:
        assert url.startswith("/"), f"<{tag}> loads {url}"
        assert not url.startswith("//"), f"<{tag}> loads {url} (another host)"
    assert "cdn" not in html.lower()
    assert "/openapi.json" in html


def test_the_policy_allows_the_inline_script_by_its_hash_and_nothing_else_inline(
    docs: tuple[str, dict[str, str], PageParts],
) -> None:
    _, headers, parts = docs
    policy = directives(headers["content-security-policy"])
    (script,) = parts.inline_scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert "'unsafe-inline'" not in headers["content-security-policy"]
    assert "'unsafe-eval'" not in headers["content-security-policy"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]  # "Try it out" calls this origin only


def test_the_inline_script_sends_nothing_to_the_online_validator(
    docs: tuple[str, dict[str, str], PageParts],
) -> None:
    _, _, parts = docs
    assert re.search(r'"validatorUrl":\s*null', parts.inline_scripts[0])


@pytest.mark.parametrize(
    ("suffix", "media_type"),
    [(".js", "text/javascript"), (".css", "text/css"), (".png", "image/png")],
)
def test_every_asset_loads_with_its_type_and_is_cached_for_good(
    client: TestClient,
    docs: tuple[str, dict[str, str], PageParts],
    suffix: str,
    media_type: str,
) -> None:
    _, _, parts = docs
    urls = [url for _, url in parts.urls if url.endswith(suffix)]
    assert urls, f"no {suffix} asset in the page"
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].split(";")[0] == media_type
        assert len(response.content) > 500
        # versioned path: a new package version is a new URL, so this one may be kept forever
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_the_script_is_swagger_ui(
    client: TestClient, docs: tuple[str, dict[str, str], PageParts]
) -> None:
    _, _, parts = docs
    (js,) = [url for tag, url in parts.urls if tag == "script"]
    assert "SwaggerUIBundle" in client.get(js).text


def test_an_unknown_asset_is_404(client: TestClient) -> None:
    response = client.get("/docs/assets/0.0.0/swagger-ui-bundle.js")
    assert response.status_code == 404


def test_redoc_is_not_served_from_a_cdn(client: TestClient) -> None:
    # FastAPI's /redoc would load its script and fonts from CDNs; it is switched off
    assert client.get("/redoc").status_code == 404
