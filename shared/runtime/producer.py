"""The runtime both producers serve on: engine, Redis, outbox relay, housekeeping, readiness.

The registry and activity write their state and its events in one transaction and leave
the rest to this runtime: the relay sends the outbox to the streams, housekeeping keeps
the `cdtt_outbox_backlog_rows` gauge (every 15 s) and forgets expired Idempotency-Keys
(every hour), and readiness needs the database, Redis, a live relay and every worker the
service asked to be watched. A producer's composition root (its bootstrap.py) adds only
what is its own: routes, rule errors, and workers such as activity's team directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.messaging.connection import RedisClient, open_streams
from shared.messaging.outbox import OutboxRelay, outbox_backlog
from shared.runtime.db import database_reachable, engine_scope, make_sessionmaker
from shared.runtime.metrics import outbox_backlog as outbox_backlog_rows
from shared.runtime.settings import Settings
from shared.web.app import create_service_app, install_domain_errors, redis_reachable
from shared.web.auth import AuthenticatorScope
from shared.web.errors import DomainError
from shared.web.idempotency import (
    DEFAULT_RETENTION,
    Transaction,
    purge_idempotency_keys,
    write_once,
)
from shared.web.principal import Principal

log = logging.getLogger(__name__)

ProducerName = Literal["registry", "activity"]

HOUSEKEEPING_SECONDS = 15.0
PURGE_EVERY_SECONDS = 3600.0


@dataclass(frozen=True)
class ProducerRuntime:
    """What a producer's lifespan built: for its routes, its workers, readiness and the tests."""

    service: ProducerName
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: RedisClient
    relay: OutboxRelay
    outbox: Table
    idempotency_keys: Table
    # Background workers readiness must see running, by the name /readyz reports.
    watched: dict[str, Callable[[], bool]] = field(default_factory=dict)

    def watch(self, name: str, healthy: Callable[[], bool]) -> None:
        """Make readiness fail while this worker is not healthy (a stopped consumer, ...)."""
        self.watched[name] = healthy

    async def readiness(self) -> dict[str, bool]:
        checks = {
            "database": await database_reachable(self.engine),
            "redis": await redis_reachable(self.redis),
            "relay": self.relay.alive(),
        }
        return checks | {name: healthy() for name, healthy in self.watched.items()}

    async def keep_house(self) -> None:
        """Every 15 s the outbox backlog gauge; every hour, forget expired Idempotency-Keys."""
        gauge = outbox_backlog_rows.labels(self.service)
        last_purge = -PURGE_EVERY_SECONDS
        while True:
            try:
                gauge.set(await outbox_backlog(self.engine, self.outbox))
                if time.monotonic() - last_purge >= PURGE_EVERY_SECONDS:
                    await purge_idempotency_keys(
                        self.engine, self.idempotency_keys, DEFAULT_RETENTION
                    )
                    last_purge = time.monotonic()
            except Exception:
                log.warning(
                    "%s housekeeping failed; trying again shortly", self.service, exc_info=True
                )
            await asyncio.sleep(HOUSEKEEPING_SECONDS)


@asynccontextmanager
async def producer_runtime(
    settings: Settings, service: ProducerName, *, outbox: Table, idempotency_keys: Table
) -> AsyncIterator[ProducerRuntime]:
    """Connect, start the relay and housekeeping; stop them and disconnect when the scope ends."""
    database_url = settings.database_url_for(service)
    async with engine_scope(database_url, application_name=f"cdtt-{service}") as engine:
        redis, layout = await open_streams(settings)
        relay = OutboxRelay.from_settings(
            settings, service=service, engine=engine, redis=redis, layout=layout, table=outbox
        )
        runtime = ProducerRuntime(
            service=service,
            settings=settings,
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            redis=redis,
            relay=relay,
            outbox=outbox,
            idempotency_keys=idempotency_keys,
        )
        relay.start()
        chores = asyncio.create_task(runtime.keep_house(), name=f"{service}-housekeeping")
        try:
            yield runtime
        finally:
            chores.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chores
            await relay.stop()
            await redis.aclose()


# A service's unit of work over a sessionmaker: one transaction, committed when it ends.
type UnitsOfWork[UnitOfWorkT] = Callable[
    [async_sessionmaker[AsyncSession]], AbstractAsyncContextManager[UnitOfWorkT]
]


@dataclass(frozen=True)
class ProducerContext[UnitOfWorkT: Transaction]:
    """What a producer's routes read from app.state.<service>: settings and keyed writes."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    unit_of_work: UnitsOfWork[UnitOfWorkT]
    idempotency_keys: Table

    async def write_once(
        self,
        request: Request,
        key: str | None,
        body: BaseModel | None,
        write: Callable[[UnitOfWorkT], Awaitable[tuple[int, BaseModel | None]]],
        *,
        principal: Principal,
        **params: Any,
    ) -> Response:
        """Run a write and store its answer under the key (the principal's province's own),
        in one unit of work; the principal's actor joins the request's fingerprint."""
        return await write_once(
            self.unit_of_work(self.sessionmaker),
            self.idempotency_keys,
            request,
            key,
            body,
            write,
            scope=principal.idempotency_scope,
            actor=principal.actor,
            **params,
        )


# Workers a producer runs beside its routes for the app's life: started when the block
# is entered, stopped when it ends (activity's team directory).
Workers = Callable[[FastAPI, ProducerRuntime], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def no_workers(_app: FastAPI, _runtime: ProducerRuntime) -> AsyncIterator[None]:
    yield


@dataclass(frozen=True)
class ProducerApp:
    """What tells one producer's app from the other's."""

    service: ProducerName
    # What the OpenAPI page (/docs) says the service is for.
    description: str
    routers: Sequence[APIRouter]
    # Rule violations of the domain, by type, and the status each answers with.
    error_status: Mapping[type[DomainError], int]
    # The service's unit of work, for the routes' keyed writes (ProducerContext).
    unit_of_work: UnitsOfWork[Transaction]
    # The service's schema: its own tables, and the outbox and Idempotency-Key store that
    # shared defines (outbox_table, idempotency_table), which the runtime looks after.
    metadata: MetaData
    workers: Workers = no_workers

    def table(self, name: str) -> Table:
        return self.metadata.tables[f"{self.metadata.schema}.{name}"]


def create_producer_app(
    spec: ProducerApp, authenticator: AuthenticatorScope, settings: Settings | None = None
) -> FastAPI:
    """A producer's app on the runtime; nothing connects until the lifespan starts.

    The lifespan keeps the runtime at app.state.runtime and the routes' context at
    app.state.<service>, and runs the producer's workers inside the runtime.
    """

    # Looked up now, so a schema without them fails when the app is built, not at start.
    outbox, idempotency_keys = spec.table("outbox"), spec.table("idempotency_keys")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with producer_runtime(
            settings or Settings(), spec.service, outbox=outbox, idempotency_keys=idempotency_keys
        ) as runtime:
            app.state.runtime = runtime
            context = ProducerContext(
                runtime.settings, runtime.sessionmaker, spec.unit_of_work, idempotency_keys
            )
            setattr(app.state, spec.service, context)
            async with spec.workers(app, runtime):
                yield

    async def readiness(request: Request) -> Mapping[str, bool]:
        runtime: ProducerRuntime = request.app.state.runtime
        return await runtime.readiness()

    app = create_service_app(
        authenticator=authenticator,
        service=spec.service,
        title=f"cdtt {spec.service}",
        description=spec.description,
        lifespan=lifespan,
        routers=spec.routers,
        readiness=readiness,
        settings=settings,
    )
    install_domain_errors(app, spec.error_status)
    return app
