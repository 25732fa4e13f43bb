"""Static files with a Cache-Control header, so browsers know how long to keep them."""

from __future__ import annotations

import os
from typing import Any

from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

# Names that are not fingerprinted: a browser may keep the file but asks each time whether it
# changed (If-None-Match with the ETag), and gets a 304 without a body when it has not.
REVALIDATE = "no-cache"


class CachedStaticFiles(StaticFiles):
    """StaticFiles whose answers (200 and 304 alike) carry `cache_control`."""

    def __init__(self, *, cache_control: str = REVALIDATE, **options: Any) -> None:
        super().__init__(**options)
        self.cache_control = cache_control

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = self.cache_control
        return response
