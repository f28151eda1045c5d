"""The outbox relay against real PostgreSQL and Redis: rows reach the stream, none lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.adapters.tables import outbox
from shared.contracts.events import UnitRegistered, decode_entry
from shared.contracts.events.registry import UnitState
from shared.contracts.streams import REGISTRY_EVENTS, StreamLayout, stream_key
from shared.messaging.outbox import OutboxRelay, add_to_outbox, replay_outbox
from shared.runtime.db import make_engine
from shared.runtime.settings import Settings, libpq_url
from tests.waiting import wait_until


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url_for("registry"))
    yield engine
    await engine.dispose()


def make_relay(engine: AsyncEngine, redis: Redis, settings: Settings, **kw: object) -> OutboxRelay:
    return OutboxRelay(
        engine=engine,
        redis=redis,
        table=outbox,
        listen_dsn=libpq_url(settings.database_url_for("registry")),
        layout=StreamLayout(settings.stream_namespace),
        **kw,  # type: ignore[arg-type]
    )


def unit_event(n: int) -> UnitRegistered:
    payload = UnitState(
        code=f"{n:05d}", name=f"Xã Thử {n}", level="commune", kind="xã", parent_code="136"
    )
    return UnitRegistered.new(
        edition="legacy", unit_path=("15", "136", f"{n:05d}"), payload=payload
    )


async def write_events(engine: AsyncEngine, events: list[UnitRegistered]) -> None:
    async with engine.begin() as conn:
        await add_to_outbox(conn, outbox, events)


async def stream_events(redis: Redis, settings: Settings) -> list[uuid.UUID]:
    entries = await redis.xrange(stream_key(REGISTRY_EVENTS, settings.stream_namespace))
    return [decode_entry(fields).event_id for _, fields in entries]


async def test_committed_rows_reach_the_stream_as_readable_json(
    engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    events = [unit_event(n) for n in range(3)]
    await write_events(engine, events)

    relay = make_relay(engine, redis, settings)
    assert await relay.relay_batch() == 3
    assert await relay.relay_batch() == 0

    entries = await redis.xrange(stream_key(REGISTRY_EVENTS, settings.stream_namespace))
    assert [decode_entry(fields) for _, fields in entries] == events
    # A plain client sees one field holding the JSON envelope, Vietnamese text unescaped.
    assert "Xã Thử 0" in entries[0][1][b"envelope"].decode()


async def test_relay_woken_by_notify_sends_without_waiting_for_the_poll(
    engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    relay = make_relay(engine, redis, settings, poll_seconds=30.0)
    relay.start()
    try:
        await asyncio.sleep(0.3)  # let it LISTEN before the write; the poll alone would take 30 s
        event = unit_event(1)
        await write_events(engine, [event])

        async def arrived() -> bool:
            return await stream_events(redis, settings) == [event.event_id]

        await wait_until(arrived, timeout=5, message="event on the stream")
    finally:
        await relay.stop()


async def test_rows_of_a_relay_that_died_before_marking_are_sent_again(
    engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    events = [unit_event(n) for n in range(4)]
    await write_events(engine, events)
    relay = make_relay(engine, redis, settings)

    # A relay whose transaction fails after XADD (a crash between XADD and marking sent).
    original = relay._redis.pipeline

    class FailAfterExecute:
        def __init__(self) -> None:
            self.inner = original(transaction=False)

        async def __aenter__(self) -> FailAfterExecute:
            await self.inner.__aenter__()
            return self

        async def __aexit__(self, *exc: object) -> None:
            await self.inner.__aexit__(*exc)

        def xadd(self, *args: object, **kwargs: object) -> None:
            self.inner.xadd(*args, **kwargs)

        async def execute(self) -> None:
            await self.inner.execute()
            raise ConnectionError("relay died after XADD")

    relay._redis.pipeline = lambda transaction=False: FailAfterExecute()  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await relay.relay_batch()
    relay._redis.pipeline = original  # type: ignore[method-assign]

    assert await relay.relay_batch() == 4
    sent = await stream_events(redis, settings)
    # Sent twice (at least once), and every event is there.
    assert sorted(sent) == sorted([e.event_id for e in events] * 2)


async def test_two_relays_together_send_every_row(
    engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    events = [unit_event(n) for n in range(2_000)]
    for start in range(0, len(events), 250):
        await write_events(engine, events[start : start + 250])

    relays = [make_relay(engine, redis, settings, batch_size=100) for _ in range(2)]

    async def drain(relay: OutboxRelay) -> None:
        while await relay.relay_batch():
            pass

    await asyncio.gather(*(drain(r) for r in relays))

    sent = await stream_events(redis, settings)
    assert set(sent) == {e.event_id for e in events}
    duplicates = len(sent) - len(set(sent))
    assert duplicates == 0, f"{duplicates} rows sent twice (SKIP LOCKED should prevent it)"
    assert all(r.stats.sent > 0 for r in relays), "both relays should have taken rows"
    async with engine.connect() as conn:
        unsent = await conn.scalar(select(func.count()).where(outbox.c.sent_at.is_(None)))
    assert unsent == 0


async def test_replay_sends_retained_rows_again(
    engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    events = [unit_event(n) for n in range(5)]
    await write_events(engine, events)
    relay = make_relay(engine, redis, settings)
    await relay.relay_batch()
    await redis.delete(stream_key(REGISTRY_EVENTS, settings.stream_namespace))  # Redis lost it

    assert await replay_outbox(engine, outbox) == 5
    await relay.relay_batch()
    assert await stream_events(redis, settings) == [e.event_id for e in events]
