"""What a service builds at start for authentication: the key verifier, or loud open access."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.auth.adapters.verifier import KeyVerifier
from shared.runtime.db import engine_scope
from shared.runtime.settings import Settings
from shared.web.auth import Authenticator, OpenAccess, check_auth_allowed

log = logging.getLogger(__name__)


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
