"""`cdtt aggregator rebuild`: every projection recomputed from the streams, then swapped in."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from services.aggregator.rebuild import RebuildRefusedError, RebuildReport, describe, rebuild
from shared.messaging.connection import open_streams
from shared.runtime.db import engine_scope
from shared.runtime.settings import Settings

aggregator_app = typer.Typer(no_args_is_help=True, help="Aggregator operations.")
console = Console(stderr=True)


async def _rebuild(settings: Settings, batch_size: int, accept_missing: bool) -> RebuildReport:
    redis, layout = await open_streams(settings)
    last_report: dict[str, int] = {}

    def on_progress(stream: str, read: int) -> None:
        if read - last_report.get(stream, 0) >= 50_000:
            last_report[stream] = read
            console.print(f"{stream}: {read:,} entries applied to the shadow tables")

    try:
        async with engine_scope(settings.database_url_for("aggregator"), pool_size=1) as engine:
            return await rebuild(
                engine,
                redis,
                layout,
                batch_size=batch_size,
                accept_missing=accept_missing,
                on_progress=on_progress,
            )
    finally:
        await redis.aclose()


@aggregator_app.command("rebuild")
def rebuild_command(
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="stream entries per shadow transaction")
    ] = 2_000,
    accept_missing: Annotated[
        bool,
        typer.Option(
            help="swap in even if events in the live figures are no longer on the streams"
        ),
    ] = False,
) -> None:
    """Recompute every projection from the streams into shadow tables, then swap them in.

    The live figures keep being served (and updated) until the swap, which is atomic.
    """
    try:
        report = asyncio.run(_rebuild(Settings(), batch_size, accept_missing))
    except RebuildRefusedError as error:
        console.print(f"rebuild refused: {error}")
        raise typer.Exit(2) from error
    for line in describe(report):
        typer.echo(line)
