"""`cdtt streams trim`: remove the stream entries every reading group has acknowledged.

Safe under lag: see shared/messaging/trimming.py (one atomic script per stream; an entry a group
has not acknowledged, or not yet read, is never removed). Run it from cron, or by hand.
"""

from __future__ import annotations

import asyncio

import typer

from shared.messaging.connection import open_streams
from shared.messaging.trimming import TrimResult, trim_streams
from shared.runtime.settings import Settings

streams_app = typer.Typer(no_args_is_help=True, help="Stream housekeeping.")


async def _trim(settings: Settings) -> list[TrimResult]:
    redis, layout = await open_streams(settings)
    try:
        return await trim_streams(redis, layout)
    finally:
        await redis.aclose()


@streams_app.command("trim")
def trim() -> None:
    """Trim both streams below the oldest entry any reading group still needs.

    Nothing is removed from a stream while one of its groups does not exist yet. After a
    trim, `cdtt aggregator rebuild` needs the producers' replay first (it reads streams
    from their start and refuses when events are missing).
    """
    for result in asyncio.run(_trim(Settings())):
        if result.outcome == "trimmed":
            typer.echo(f"{result.stream}: {result.removed} entries removed (below {result.detail})")
        elif result.outcome == "missing_group":
            typer.echo(f"{result.stream}: kept whole, group {result.detail!r} has not read it yet")
        else:
            typer.echo(f"{result.stream}: no such stream")
