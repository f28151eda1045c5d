"""`cdtt registry replay` / `cdtt activity replay`: refill a lost stream from a producer's outbox.

After Redis lost a stream, the outbox rows kept for the retention window are marked unsent;
the running service's relay (or this command, when it publishes) sends them again, and
consumers deduplicate by event_id. One command, mounted by both producers' CLIs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.messaging.connection import open_streams
from shared.messaging.outbox import OutboxRelay, replay_outbox
from shared.runtime import reachable
from shared.runtime.db import engine_scope
from shared.runtime.settings import ServiceName, Settings

console = Console(stderr=True)


async def publish_backlog(
    engine: AsyncEngine,
    settings: Settings,
    *,
    service: ServiceName,
    table: Table,
    advance: Callable[[int], None] | None = None,
) -> int:
    """Send every unsent outbox row now, as the service's relay would (they may run together)."""
    redis, layout = await open_streams(settings)
    relay = OutboxRelay.from_settings(
        settings, service=service, engine=engine, redis=redis, layout=layout, table=table
    )
    sent = 0
    try:
        while batch := await relay.relay_batch():
            sent += batch
            if advance is not None:
                advance(batch)
    finally:
        await redis.aclose()
    return sent


async def replay_and_publish(
    settings: Settings,
    *,
    service: ServiceName,
    table: Table,
    since_hours: float | None,
    publish: bool,
) -> int:
    """Mark retained rows unsent; with `publish` (and a Redis), send them now. Returns marked."""
    await reachable.wait_for_servers(settings, redis=publish and settings.redis_url is not None)
    async with engine_scope(settings.database_url_for(service), pool_size=2) as engine:
        marked = await replay_outbox(engine, table, since_hours)
        console.print(f"marked {marked:,} retained events for sending again ({service})")
        if publish and settings.redis_url:
            sent = await publish_backlog(engine, settings, service=service, table=table)
            console.print(f"published {sent:,} events")
        elif publish:
            console.print(f"no CDTT_REDIS_URL: the {service} service's relay sends them")
    return marked


def replay_command(service: ServiceName, table: Table) -> Callable[..., None]:
    """The `replay` subcommand of one producer's CLI group."""

    def replay(
        since_hours: Annotated[
            float | None,
            typer.Option(min=0, help="only events created this many hours ago or later"),
        ] = None,
        publish: Annotated[
            bool, typer.Option(help="send them to Redis now (when CDTT_REDIS_URL is set)")
        ] = True,
    ) -> None:
        asyncio.run(
            replay_and_publish(
                Settings(), service=service, table=table, since_hours=since_hours, publish=publish
            )
        )

    replay.__doc__ = f"Send retained {service} events again (after Redis lost the stream)."
    return replay
