"""Composition root of the registry: engine, Redis, relay and routes, built in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.bootstrap import authenticator_scope
from services.registry.adapters.tables import idempotency_keys, outbox
from services.registry.entrypoints.http import ERROR_STATUS, RegistryContext, router
from shared.messaging.outbox import OutboxRelay, outbox_backlog
from shared.runtime.db import database_reachable, engine_scope, make_sessionmaker
from shared.runtime.metrics import outbox_backlog as outbox_backlog_rows
from shared.runtime.settings import Settings
from shared.web.app import create_service_app, install_domain_errors, redis_reachable
from shared.web.idempotency import DEFAULT_RETENTION, purge_idempotency_keys

log = logging.getLogger(__name__)

HOUSEKEEPING_SECONDS = 15.0
PURGE_EVERY_SECONDS = 3600.0


async def _housekeeping(runtime: RegistryRuntime) -> None:
    """Every 15 s the outbox backlog gauge; every hour, forget expired Idempotency-Keys."""
    last_purge = -PURGE_EVERY_SECONDS
    while True:
        try:
            backlog = await outbox_backlog(runtime.engine, outbox)
            outbox_backlog_rows.labels("registry").set(backlog)
            if time.monotonic() - last_purge >= PURGE_EVERY_SECONDS:
                await purge_idempotency_keys(runtime.engine, idempotency_keys, DEFAULT_RETENTION)
                last_purge = time.monotonic()
        except Exception:
            log.warning("registry housekeeping failed; trying again shortly", exc_info=True)
        await asyncio.sleep(HOUSEKEEPING_SECONDS)


@dataclass(frozen=True)
class RegistryRuntime:
    """What the lifespan built, for the readiness probe and the key purge."""

    engine: AsyncEngine
    redis: Redis
    relay: OutboxRelay


def create_app(settings: Settings | None = None) -> FastAPI:
    """The registry app; nothing connects until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or Settings()
        database_url = config.database_url_for("registry")
        async with engine_scope(database_url, application_name="cdtt-registry") as engine:
            redis = Redis.from_url(config.require_redis_url())
            relay = OutboxRelay.from_settings(
                config, service="registry", engine=engine, redis=redis, table=outbox
            )
            app.state.registry = RegistryContext(config, make_sessionmaker(engine))
            app.state.runtime = runtime = RegistryRuntime(engine, redis, relay)
            relay.start()
            chores = asyncio.create_task(_housekeeping(runtime), name="registry-housekeeping")
            try:
                yield
            finally:
                chores.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await chores
                await relay.stop()
                await redis.aclose()

    async def readiness(request: Request) -> Mapping[str, bool]:
        runtime: RegistryRuntime = request.app.state.runtime
        return {
            "database": await database_reachable(runtime.engine),
            "redis": await redis_reachable(runtime.redis),
            "relay": runtime.relay.alive(),
        }

    app = create_service_app(
        authenticator=authenticator_scope,
        service="registry",
        title="cdtt registry",
        description="Administrative units, villages, teams and members; "
        "publishes registry.events.v1 through a transactional outbox.",
        lifespan=lifespan,
        routers=[router],
        readiness=readiness,
        settings=settings,
    )
    install_domain_errors(app, ERROR_STATUS)
    return app
