"""API keys at the HTTP edge: the Authenticator port and the FastAPI dependencies (`PublisherDep`).

The verifier behind the port is services/auth's (it owns the `auth` schema); each
service's composition root hands it to create_service_app.

The key travels as `Authorization: Bearer <key>`. The live stream (/v1/live) also takes
it from the `cdtt_live_key` cookie, because a browser's EventSource cannot send headers:
the dashboard sets that cookie (Path=/v1/live, SameSite=Strict, no expiry) just before it
opens the stream and deletes it once the stream is open. A cookie rather than a query
token because a URL ends up in proxies' and servers' access logs and browser history,
and a separate short-lived token would need a signing secret shared by every aggregator.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from shared.runtime.settings import Settings
from shared.web.principal import ANONYMOUS_ADMIN, Principal


class Authenticator(Protocol):
    async def authenticate(self, presented: str | None) -> Principal:
        """The principal of a presented key; raises AuthenticationError (401) otherwise."""
        ...

    def verified(self, presented: str) -> bool:
        """Whether this key, secret included, matches one verified recently (the rate limiter
        asks: a key id alone is public, in logs and events, so it never picks a bucket)."""
        ...

    async def reachable(self) -> bool:
        """Whether the keys can be read now (readiness)."""
        ...


class OpenAccess:
    """CDTT_AUTH=off: every request is an anonymous admin. Local demos only."""

    async def authenticate(self, presented: str | None) -> Principal:
        return ANONYMOUS_ADMIN

    def verified(self, presented: str) -> bool:
        return False

    async def reachable(self) -> bool:
        return True


# What a service's composition root hands the app factory: services.auth.bootstrap builds the
# key verifier (it owns the `auth` schema), so shared/ never reads another service's tables.
AuthenticatorScope = Callable[[Settings, str], AbstractAsyncContextManager[Authenticator]]


class InsecureSettingsError(RuntimeError):
    """Settings a service refuses to start with."""


def check_auth_allowed(settings: Settings) -> None:
    """CDTT_AUTH=off is for local demos: never with CDTT_ENV=production."""
    if not settings.auth and settings.env == "production":
        raise InsecureSettingsError(
            "CDTT_AUTH=off with CDTT_ENV=production: refusing to start with every request "
            "treated as an anonymous admin. Turn auth on and give clients API keys "
            "(`cdtt keys create`)."
        )


def loopback_only(host: str) -> bool:
    """Whether every address `host` names (a name may resolve to several) is a loopback one."""
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]) for info in found}
    return bool(addresses) and all(
        ipaddress.ip_address(address.split("%", 1)[0]).is_loopback for address in addresses
    )


def check_bind_allowed(settings: Settings, host: str) -> None:
    """CDTT_AUTH=off only on loopback: whatever CDTT_ENV says, never reachable from outside."""
    check_auth_allowed(settings)
    if not settings.auth and not loopback_only(host):
        raise InsecureSettingsError(
            f"CDTT_AUTH=off with --host {host}: refusing to serve every request as an "
            "anonymous admin on an address other machines can reach. Bind 127.0.0.1 (or ::1) "
            "for a keyless demo, or turn auth on and give clients API keys (`cdtt keys create`)."
        )


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


async def _live_key(
    credentials: Credentials, cookie: Annotated[str | None, Depends(_live_cookie)]
) -> str | None:
    return cookie if credentials is None else credentials.credentials


# The key a live stream was opened with: the stream checks it again while it runs.
LiveKeyDep = Annotated[str | None, Depends(_live_key)]


async def _live_operator(request: Request, presented: LiveKeyDep) -> Principal:
    principal = await authenticator(request).authenticate(presented)
    principal.require_role("operator", "admin", doing="read figures")
    return principal


# Writes: publishers (inside their province: call `principal.require_write`) and admins.
PublisherDep = Annotated[Principal, Depends(_publisher)]
# Figures, CSV, dashboard data: operators (of one province when the key names one) and admins.
OperatorDep = Annotated[Principal, Depends(_operator)]
# /v1/live: as OperatorDep, the key also accepted from the `cdtt_live_key` cookie.
LiveOperatorDep = Annotated[Principal, Depends(_live_operator)]
