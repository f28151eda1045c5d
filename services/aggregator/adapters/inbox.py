"""The processed-event inbox kept bounded: ids old enough never to come back are forgotten.

Every applied event leaves its event_id in `processed_events` (the dedupe of redeliveries
and replays). Without a purge that table grows by one row per event forever; this one
deletes what `inbox_cutoff` (domain.py) says can no longer be redelivered or replayed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters.store import SWAP_LOCK_KEY
from services.aggregator.adapters.tables import processed_events
from services.aggregator.domain import inbox_cutoff
from shared.contracts.streams import AGGREGATOR_GROUP, STREAMS, StreamLayout
from shared.messaging.connection import RedisClient
from shared.messaging.trimming import delivery_floor, entry_time

log = logging.getLogger(__name__)

# Rows per DELETE: each chunk is its own short transaction, so the first purge of a large
# inbox never holds a long one open beside the live batches.
PURGE_CHUNK: Final = 20_000
PURGE_EVERY_SECONDS: Final = 3600.0


@dataclass(frozen=True)
class InboxPurge:
    cutoff: datetime | None
    purged: int


async def purge_inbox(
    engine: AsyncEngine,
    redis: RedisClient,
    retention: timedelta,
    *,
    layout: StreamLayout = StreamLayout(),  # noqa: B008 - frozen, so safely shared
    now: datetime | None = None,
) -> InboxPurge:
    """Forget the processed ids recorded before the cutoff the streams' floors allow."""
    floors = []
    # Every partition has its own floor; the oldest of them all bounds what may come back.
    for key in (key for stream in STREAMS for key in layout.keys(stream)):
        floor = await delivery_floor(redis, key, AGGREGATOR_GROUP)
        floors.append(None if floor is None else entry_time(floor))
    cutoff = inbox_cutoff(now or datetime.now(UTC), floors, retention)
    if cutoff is None:
        return InboxPurge(None, 0)
    purged = await purge_processed_before(engine, cutoff)
    if purged:
        log.info("forgot %d processed event ids recorded before %s", purged, cutoff.isoformat())
    return InboxPurge(cutoff, purged)


async def keep_inbox_bounded(
    engine: AsyncEngine,
    redis: RedisClient,
    retention: timedelta,
    *,
    layout: StreamLayout,
    every_seconds: float = PURGE_EVERY_SECONDS,
) -> None:
    """The aggregator's housekeeping task: `purge_inbox` now, then every `every_seconds`."""
    while True:
        try:
            await purge_inbox(engine, redis, retention, layout=layout)
        except Exception:
            log.warning("inbox purge failed; trying again next round", exc_info=True)
        await asyncio.sleep(every_seconds)


async def purge_processed_before(engine: AsyncEngine, cutoff: datetime) -> int:
    """Delete inbox rows recorded before `cutoff`, chunk by chunk; how many went."""
    t = processed_events
    total = 0
    while True:
        async with engine.begin() as conn:
            # As a live batch does: `cdtt aggregator rebuild` swaps this table out under
            # the exclusive lock, and a purge must not delete from the one being replaced.
            await conn.execute(select(func.pg_advisory_xact_lock_shared(SWAP_LOCK_KEY)))
            chunk = select(t.c.event_id).where(t.c.processed_at < cutoff).limit(PURGE_CHUNK)
            result = await conn.execute(delete(t).where(t.c.event_id.in_(chunk.scalar_subquery())))
        deleted: int = result.rowcount
        total += deleted
        if deleted < PURGE_CHUNK:
            return total


async def inbox_size(engine: AsyncEngine) -> tuple[int, int]:
    """(rows, bytes on disk including its primary key) of the inbox."""
    t = processed_events
    async with engine.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(t))).scalar_one()
        size = (
            await conn.execute(select(func.pg_total_relation_size(func.to_regclass(t.fullname))))
        ).scalar_one()
    return int(rows), int(size)
