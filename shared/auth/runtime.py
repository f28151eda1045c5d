"""What a service builds at start for authentication: the key verifier, or loud open access."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.auth.verifier import Authenticator, KeyVerifier, OpenAccess
from shared.db import engine_scope
from shared.settings import Settings

log = logging.getLogger(__name__)


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


@asynccontextmanager
async def authenticator_scope(settings: Settings, service: str) -> AsyncIterator[Authenticator]:
    """The service's authenticator for its whole life (a small engine on the auth schema)."""
    check_auth_allowed(settings)
    if not settings.auth:
        log.warning(
            "!!! %s: CDTT_AUTH=off: NO AUTHENTICATION. Every request is an anonymous admin "
            "that may write any province. For local demos only, never on a network. !!!",
            service,
        )
        yield OpenAccess()
        return
    async with engine_scope(
        settings.auth_database_url_for(), pool_size=2, application_name=f"cdtt-{service}-auth"
    ) as engine:
        yield KeyVerifier(engine, settings.auth_cache_seconds)
