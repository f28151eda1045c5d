"""Operator dashboard: GET / serves a page whose script reads /v1/coverage and follows /v1/live.

Everything is served from this package (no CDN, no outside asset: closed government
networks). The page is static; the browser fetches the figures and sets every name as
text, and the Content-Security-Policy forbids inline script as a second line of defence.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from typing import Final

from fastapi import APIRouter
from fastapi.responses import Response

from shared.web.app import ApiError

ASSET_TYPES: Final = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "map.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
VERSION_MARK: Final = "__ASSET_VERSION__"


def dashboard_router() -> APIRouter:
    """The page at `/` and its assets at `/dashboard/<name>`, read once from the package."""
    static = files(__package__ or "services.aggregator.entrypoints") / "static"
    assets = {name: (static / name).read_bytes() for name in ASSET_TYPES}
    # Assets are cached for good and the page names them by content hash, so a deploy
    # is picked up on the next page load and never half-applied.
    version = hashlib.sha256(b"".join(assets.values())).hexdigest()[:12]
    page = (static / "index.html").read_text("utf-8").replace(VERSION_MARK, version).encode()
    router = APIRouter(tags=["dashboard"])

    @router.get("/", include_in_schema=False)
    async def dashboard_page() -> Response:
        return Response(
            page,
            media_type="text/html; charset=utf-8",
            headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
        )

    @router.get("/dashboard/{name}", include_in_schema=False)
    async def dashboard_asset(name: str) -> Response:
        if name not in assets:
            raise ApiError(404, "not_found", f"no dashboard asset named {name!r}")
        return Response(
            assets[name],
            media_type=ASSET_TYPES[name],
            headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=31536000, immutable"},
        )

    return router
