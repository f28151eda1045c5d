"""The processed-event inbox purge on real PostgreSQL and Redis: what goes, what must stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters import inbox
from services.aggregator.adapters.inbox import inbox_size, purge_inbox, purge_processed_before
from services.aggregator.adapters.tables import processed_events
from shared.contracts.streams import (
    ACTIVITY_EVENTS,
    AGGREGATOR_GROUP,
    ENVELOPE_FIELD,
    STREAMS,
    StreamLayout,
    stream_key,
)
from shared.runtime.settings import Settings

RETENTION = timedelta(hours=96)


async def record(engine: AsyncEngine, *ages: timedelta) -> list[uuid.UUID]:
    """Inbox rows recorded `age` ago (by the database's clock); their ids, in order."""
    ids = [uuid.uuid4() for _ in ages]
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(processed_events),
            [
                {"event_id": i, "stream": ACTIVITY_EVENTS, "processed_at": now - age}
                for i, age in zip(ids, ages, strict=True)
            ],
        )
    return ids


async def remaining(engine: AsyncEngine) -> set[uuid.UUID]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(processed_events.c.event_id))).scalars())


async def deliver_one(redis: Redis, settings: Settings, stream: str, *, ack: bool) -> None:
    """Add an entry to `stream` and hand it to the aggregator's group (acked or left pending)."""
    key = stream_key(stream, settings.stream_namespace)
    entry_id = await redis.xadd(key, {ENVELOPE_FIELD: b"{}"})
    await redis.xreadgroup(AGGREGATOR_GROUP, "test", {key: ">"}, count=1)
    if ack:
        await redis.xack(key, AGGREGATOR_GROUP, entry_id)


async def groups_caught_up(redis: Redis, settings: Settings) -> None:
    for stream in STREAMS:
        key = stream_key(stream, settings.stream_namespace)
        await redis.xgroup_create(key, AGGREGATOR_GROUP, id="0", mkstream=True)
        await deliver_one(redis, settings, stream, ack=True)


async def test_ids_older_than_the_retention_are_forgotten_and_newer_ones_kept(
    engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    await groups_caught_up(redis, settings)
    old = await record(engine, timedelta(hours=100), timedelta(hours=200))
    kept = await record(engine, timedelta(hours=1), timedelta(hours=90))

    result = await purge_inbox(
        engine, redis, RETENTION, layout=StreamLayout(settings.stream_namespace)
    )

    assert result.purged == len(old)
    assert await remaining(engine) == set(kept)


async def test_a_pending_entry_holds_the_purge_back_to_its_own_time(
    engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    # An aggregator stopped for a week with an entry pending: it may yet redeliver an id
    # processed before it stopped, so "now" cannot decide alone.
    await groups_caught_up(redis, settings)
    await deliver_one(redis, settings, ACTIVITY_EVENTS, ack=False)
    old = await record(engine, timedelta(hours=100))
    kept = await record(engine, timedelta(hours=50))

    a_week_later = datetime.now(UTC) + timedelta(days=7)
    result = await purge_inbox(
        engine, redis, RETENTION, layout=StreamLayout(settings.stream_namespace), now=a_week_later
    )

    assert result.purged == len(old)
    assert await remaining(engine) == set(kept)


async def test_nothing_is_forgotten_while_a_stream_has_no_group(
    engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    # A group recreated after Redis lost its streams reads them again from the start.
    key = stream_key(STREAMS[0], settings.stream_namespace)
    await redis.xgroup_create(key, AGGREGATOR_GROUP, id="0", mkstream=True)
    await deliver_one(redis, settings, STREAMS[0], ack=True)
    ids = await record(engine, timedelta(hours=500))

    result = await purge_inbox(
        engine, redis, RETENTION, layout=StreamLayout(settings.stream_namespace)
    )

    assert (result.cutoff, result.purged) == (None, 0)
    assert await remaining(engine) == set(ids)


async def test_a_large_purge_goes_in_chunks_and_reports_every_row(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "PURGE_CHUNK", 2)
    await record(engine, *[timedelta(hours=100)] * 5)
    kept = await record(engine, timedelta(hours=1))
    rows_before, bytes_before = await inbox_size(engine)

    purged = await purge_processed_before(engine, datetime.now(UTC) - RETENTION)

    assert purged == 5
    assert await remaining(engine) == set(kept)
    assert rows_before == 6
    assert bytes_before > 0
