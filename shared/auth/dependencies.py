"""FastAPI dependencies that turn a request's key into a Principal: `principal: PublisherDep`.

The key travels as `Authorization: Bearer <key>`. The live stream (/v1/live) also takes
it from the `cdtt_live_key` cookie, because a browser's EventSource cannot send headers:
the dashboard sets that cookie (Path=/v1/live, SameSite=Strict, no expiry) just before it
opens the stream and deletes it once the stream is open. A cookie rather than a query
token because a URL ends up in proxies' and servers' access logs and browser history,
and a separate short-lived token would need a signing secret shared by every aggregator.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from shared.auth.principal import Principal
from shared.auth.verifier import Authenticator

LIVE_COOKIE = "cdtt_live_key"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `cdtt keys create` (publisher, operator or admin).",
)
_live_cookie = APIKeyCookie(
    name=LIVE_COOKIE,
    auto_error=False,
    scheme_name="LiveCookie",
    description="The same API key, for EventSource clients that cannot send headers "
    "(only /v1/live reads it).",
)

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def authenticator(request: Request) -> Authenticator:
    """Built by create_service_app's lifespan: the key verifier, or open access when off."""
    found: Authenticator = request.app.state.auth
    return found


async def _principal(request: Request, credentials: Credentials) -> Principal:
    presented = None if credentials is None else credentials.credentials
    if presented is None and request.headers.get("authorization"):
        presented = request.headers["authorization"]  # not "Bearer ...": refused as malformed
    return await authenticator(request).authenticate(presented)


# Any valid key (reference data; details are then checked with `principal.require_read`).
PrincipalDep = Annotated[Principal, Depends(_principal)]


async def _publisher(principal: PrincipalDep) -> Principal:
    principal.require_role("publisher", "admin", doing="write")
    return principal


async def _operator(principal: PrincipalDep) -> Principal:
    principal.require_role("operator", "admin", doing="read figures")
    return principal


async def _live_operator(
    request: Request,
    credentials: Credentials,
    cookie: Annotated[str | None, Depends(_live_cookie)],
) -> Principal:
    presented = cookie if credentials is None else credentials.credentials
    principal = await authenticator(request).authenticate(presented)
    principal.require_role("operator", "admin", doing="read figures")
    return principal


# Writes: publishers (inside their province: call `principal.require_write`) and admins.
PublisherDep = Annotated[Principal, Depends(_publisher)]
# Figures, CSV, dashboard data: operators (of one province when the key names one) and admins.
OperatorDep = Annotated[Principal, Depends(_operator)]
# /v1/live: as OperatorDep, the key also accepted from the `cdtt_live_key` cookie.
LiveOperatorDep = Annotated[Principal, Depends(_live_operator)]
