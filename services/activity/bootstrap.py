"""Composition root of activity: engine, Redis, outbox relay, directory consumer, routes.

Everything is built in the lifespan (nothing at import time). Readiness needs the
database, Redis, a live relay and a healthy directory consumer: a stopped consumer would
leave the directory stale while the service kept answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.activity.adapters.tables import idempotency_keys, outbox
from services.activity.entrypoints.http import ERROR_STATUS, ActivityContext, router
from services.activity.entrypoints.subscribers import directory_handler
from services.auth.bootstrap import authenticator_scope
from shared.contracts.streams import ACTIVITY_GROUP, REGISTRY_EVENTS
from shared.messaging.consumer import GroupConsumer
from shared.messaging.outbox import OutboxRelay
from shared.runtime.db import database_reachable, engine_scope, make_sessionmaker
from shared.runtime.settings import Settings
from shared.web.app import create_service_app, install_domain_errors, redis_reachable
from shared.web.idempotency import DEFAULT_RETENTION, purge_idempotency_keys

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 3600.0


@dataclass(frozen=True)
class ActivityRuntime:
    """What the lifespan built, for the readiness probe and the tests."""

    engine: AsyncEngine
    redis: Redis
    relay: OutboxRelay
    directory: GroupConsumer


async def _purge_keys_forever(engine: AsyncEngine) -> None:
    """Forget Idempotency-Keys past their retention, once an hour."""
    while True:
        try:
            await purge_idempotency_keys(engine, idempotency_keys, DEFAULT_RETENTION)
        except Exception:
            log.warning("purging idempotency keys failed; next try in an hour", exc_info=True)
        await asyncio.sleep(PURGE_EVERY_SECONDS)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The activity app; nothing connects until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or Settings()
        database_url = config.database_url_for("activity")
        async with engine_scope(database_url, application_name="cdtt-activity") as engine:
            sessionmaker = make_sessionmaker(engine)
            redis = Redis.from_url(config.require_redis_url())
            relay = OutboxRelay.from_settings(
                config, service="activity", engine=engine, redis=redis, table=outbox
            )
            directory = GroupConsumer.from_settings(
                config,
                group=ACTIVITY_GROUP,
                handlers={REGISTRY_EVENTS: directory_handler(sessionmaker)},
            )
            app.state.activity = ActivityContext(config, sessionmaker)
            app.state.runtime = ActivityRuntime(engine, redis, relay, directory)
            relay.start()
            purge = asyncio.create_task(_purge_keys_forever(engine), name="purge-idempotency")
            try:
                await directory.start()
                yield
            finally:
                await directory.stop()
                purge.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purge
                await relay.stop()
                await redis.aclose()

    async def readiness(request: Request) -> Mapping[str, bool]:
        runtime: ActivityRuntime = request.app.state.runtime
        return {
            "database": await database_reachable(runtime.engine),
            "redis": await redis_reachable(runtime.redis),
            "relay": runtime.relay.alive(),
            "team_directory_consumer": runtime.directory.healthy(),
        }

    app = create_service_app(
        authenticator=authenticator_scope,
        service="activity",
        title="cdtt activity",
        description="Support work done by Community Digital Technology Teams, recorded "
        "one by one or in batches and published on activity.events.v1 through a "
        "transactional outbox. Keeps its own team directory from registry.events.v1.",
        lifespan=lifespan,
        routers=[router],
        readiness=readiness,
        settings=settings,
    )
    install_domain_errors(app, ERROR_STATUS)
    return app
