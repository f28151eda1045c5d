"""`cdtt activity replay`: send retained support.recorded events to the stream again.

After Redis lost activity.events.v1, the outbox rows kept for the retention window are
marked unsent; the running service's relay (or this command, with --publish) sends them,
and consumers deduplicate by event_id.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from services.activity.adapters.tables import outbox
from shared.messaging.connection import open_streams
from shared.messaging.outbox import OutboxRelay, replay_outbox
from shared.runtime.db import engine_scope
from shared.runtime.settings import Settings, libpq_url

activity_app = typer.Typer(no_args_is_help=True, help="Activity operations.")
console = Console(stderr=True)


async def replay_activity(settings: Settings, since_hours: float | None, publish: bool) -> int:
    """Mark retained rows unsent; with `publish`, send them now. Returns how many were marked."""
    database_url = settings.database_url_for("activity")
    async with engine_scope(database_url, pool_size=2) as engine:
        marked = await replay_outbox(engine, outbox, since_hours)
        console.print(f"marked {marked:,} retained support events for sending again")
        if publish and settings.redis_url:
            redis, layout = await open_streams(settings)
            relay = OutboxRelay(
                engine=engine,
                redis=redis,
                table=outbox,
                listen_dsn=libpq_url(database_url),
                layout=layout,
                batch_size=settings.relay_batch_size,
            )
            sent = 0
            try:
                while batch := await relay.relay_batch():
                    sent += batch
            finally:
                await redis.aclose()
            console.print(f"published {sent:,} events")
        elif publish:
            console.print("no CDTT_REDIS_URL: the activity service's relay sends them")
    return marked


@activity_app.command("replay")
def replay(
    since_hours: Annotated[
        float | None,
        typer.Option(min=0, help="only events recorded this many hours ago or later"),
    ] = None,
    publish: Annotated[
        bool, typer.Option(help="send them to Redis now (when CDTT_REDIS_URL is set)")
    ] = True,
) -> None:
    """Send retained activity events again (after Redis lost the stream)."""
    asyncio.run(replay_activity(Settings(), since_hours, publish))
