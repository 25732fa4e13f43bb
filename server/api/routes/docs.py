"""Interactive API docs (Swagger UI) from files on this machine, under a policy made for them.

FastAPI's own /docs loads Swagger UI from a CDN and starts it with an inline script. Here the
assets come from the fastapi-offline package, served under a versioned path (so they can be
cached for good), and the page's Content-Security-Policy allows its one inline script by hash.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.resources
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.routing import Mount

from server.api.static import CachedStaticFiles

router = APIRouter(include_in_schema=False)

ASSETS_PACKAGE = "fastapi_offline"
# the package version in the path: a new version is a new URL, so browsers may keep each forever
ASSETS_PATH = f"/docs/assets/{importlib.metadata.version(ASSETS_PACKAGE)}"
IMMUTABLE = "public, max-age=31536000, immutable"

INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def assets_directory() -> Path:
    """Swagger UI's JavaScript, CSS and favicon, as installed with fastapi-offline."""
    return Path(str(importlib.resources.files(ASSETS_PACKAGE) / "static"))


def assets() -> Mount:
    """The route that serves the docs' assets."""
    files = CachedStaticFiles(directory=assets_directory(), cache_control=IMMUTABLE)
    return Mount(ASSETS_PATH, app=files, name="docs-assets")


def script_hashes(html: str) -> list[str]:
    """CSP source expressions ('sha256-...') for each inline <script> in the page."""
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in INLINE_SCRIPT.findall(html)
    ]


def docs_policy(html: str) -> str:
    """The page's own CSP: its assets from this origin, its inline script by hash only."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {' '.join(script_hashes(html))}",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for /openapi.json."""
    root = request.scope.get("root_path", "")
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title}: API docs",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        # no badge from the online validator: nothing leaves this origin
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode()
    return HTMLResponse(html, headers={"content-security-policy": docs_policy(html)})
