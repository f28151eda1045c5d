"""Composition root of the aggregator: engine, Redis, consumer group, live feed and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType
from typing import Any

from fastapi import FastAPI, Request

from services.aggregator.adapters.inbox import keep_inbox_bounded
from services.aggregator.adapters.lag import LagReader
from services.aggregator.adapters.live import LiveFeed
from services.aggregator.entrypoints.coverage_map import router as map_router
from services.aggregator.entrypoints.dashboard import dashboard_router
from services.aggregator.entrypoints.http import AggregatorContext, router
from services.aggregator.entrypoints.subscribers import aggregator_consumer
from services.auth.bootstrap import authenticator_scope
from shared.messaging.connection import RedisClient, open_streams
from shared.messaging.consumer import GroupConsumer
from shared.runtime.db import database_reachable, engine_scope
from shared.runtime.settings import Settings, libpq_url
from shared.web.app import create_service_app, redis_reachable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AggregatorRuntime:
    """What the lifespan built, for the readiness probe."""

    context: AggregatorContext
    redis: RedisClient
    consumer: GroupConsumer


@contextlib.contextmanager
def on_shutdown_signal(callback: Callable[[], None]) -> Iterator[None]:
    """Run `callback` as soon as SIGTERM/SIGINT arrives, before the server's own handling.

    uvicorn waits for open responses to finish before it runs the lifespan's shutdown,
    and a live stream never finishes by itself: ending the streams on the signal is
    what lets the server stop gracefully. The server's handler is chained, not replaced.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        callback()
        chained = previous.get(signal.Signals(signum))
        if callable(chained):
            chained(signum, frame)

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, chained in previous.items():
            signal.signal(signum, chained)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The aggregator app; nothing connects until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or Settings()
        database_url = config.database_url_for("aggregator")
        async with engine_scope(database_url, application_name="cdtt-aggregator") as engine:
            redis, layout = await open_streams(config)
            consumer = aggregator_consumer(config, engine)
            lag = LagReader(redis, layout)
            feed = LiveFeed(engine=engine, listen_dsn=libpq_url(database_url), lag_probe=lag)
            context = AggregatorContext(config, engine, lag, feed)
            app.state.aggregator = context
            app.state.runtime = AggregatorRuntime(context, redis, consumer)
            feed.start()
            housekeeping = asyncio.create_task(
                keep_inbox_bounded(
                    engine,
                    redis,
                    timedelta(hours=config.inbox_retention_hours),
                    layout=layout,
                ),
                name="aggregator-inbox-purge",
            )
            try:
                await consumer.start()
                with on_shutdown_signal(feed.close_subscriptions):
                    yield
            finally:
                housekeeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await housekeeping
                await consumer.stop()
                await feed.stop()
                await redis.aclose()

    async def readiness(request: Request) -> Mapping[str, bool]:
        runtime: AggregatorRuntime = request.app.state.runtime
        return {
            "database": await database_reachable(runtime.context.engine),
            "redis": await redis_reachable(runtime.redis),
            "consumer": runtime.consumer.healthy(),
            "live_feed": runtime.context.feed.alive(),
        }

    return create_service_app(
        authenticator=authenticator_scope,
        service="aggregator",
        title="cdtt aggregator",
        description="Live coverage figures from registry.events.v1 and activity.events.v1 "
        "(consumer group aggregator): per unit, per level and nationally, over HTTP, CSV "
        "and Server-Sent Events, and the operator dashboard.",
        lifespan=lifespan,
        # The map's path comes first: /v1/coverage/{code} would take "map" as a code.
        routers=[map_router, router, dashboard_router()],
        readiness=readiness,
        settings=settings,
    )
