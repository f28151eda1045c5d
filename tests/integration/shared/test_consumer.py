"""GroupConsumer against real Redis: acks, reclaims, dead letters, lost streams, health."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.contracts.events import Event, UnitRegistered, entry_fields
from shared.contracts.events.registry import UnitState
from shared.contracts.streams import REGISTRY_EVENTS, dead_letter_key, stream_key
from shared.messaging.consumer import EventBatchHandler, GroupConsumer
from shared.runtime.metrics import REGISTRY
from shared.runtime.settings import Settings
from tests.waiting import wait_until

GROUP = "test-group"


def unit_event(n: int) -> UnitRegistered:
    payload = UnitState(
        code=f"{n:05d}", name=f"Xã Thử {n}", level="commune", kind="xã", parent_code="136"
    )
    return UnitRegistered.new(
        edition="legacy", unit_path=("15", "136", f"{n:05d}"), payload=payload
    )


class Applied:
    """A handler that records what it applied, as a projection keyed by event_id would."""

    def __init__(self) -> None:
        self.event_ids: set[uuid.UUID] = set()
        self.calls = 0

    async def __call__(self, events: Sequence[Event]) -> None:
        self.calls += 1
        self.event_ids |= {e.event_id for e in events}

    async def has(self, expected: set[uuid.UUID]) -> bool:
        return expected <= self.event_ids


class Held(Applied):
    """An Applied that holds every batch until `release` is set; `entered` once one arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, events: Sequence[Event]) -> None:
        self.entered.set()
        await self.release.wait()
        await super().__call__(events)


@pytest.fixture
def key(settings: Settings) -> str:
    return stream_key(REGISTRY_EVENTS, settings.stream_namespace)


@pytest.fixture
async def consumers(settings: Settings) -> AsyncIterator[list[GroupConsumer]]:
    """Consumers a test starts; whatever is still running is stopped at the end."""
    started: list[GroupConsumer] = []
    yield started
    for consumer in started:
        await consumer.stop()


async def start_consumer(
    settings: Settings,
    started: list[GroupConsumer],
    handler: EventBatchHandler,
    **options: Any,
) -> GroupConsumer:
    consumer = GroupConsumer(
        redis_url=settings.require_redis_url(),
        group=GROUP,
        handlers={REGISTRY_EVENTS: handler},
        namespace=settings.stream_namespace,
        **{"reclaim_idle_ms": 300, "supervise_seconds": 0.05, **options},
    )
    await consumer.start()
    started.append(consumer)
    return consumer


async def publish(redis: Redis, key: str, count: int, start: int = 0) -> set[uuid.UUID]:
    events = [unit_event(n) for n in range(start, start + count)]
    # One MULTI: a blocked reader sees all of them at once.
    async with redis.pipeline(transaction=True) as pipe:
        for event in events:
            pipe.xadd(key, entry_fields(event))  # type: ignore[arg-type]
        await pipe.execute()
    return {e.event_id for e in events}


async def pending(redis: Redis, key: str) -> int:
    summary = await redis.xpending(key, GROUP)
    return int(summary["pending"])


async def test_a_new_group_starts_at_zero_and_reads_the_backlog(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    backlog = await publish(redis, key, 120)
    applied = Applied()
    consumer = await start_consumer(settings, consumers, applied, batch_size=50)

    await wait_until(lambda: applied.has(backlog), message="backlog applied")
    assert applied.event_ids == backlog
    assert await pending(redis, key) == 0
    # Bounded batches: 120 entries never arrive in one handler call.
    assert applied.calls >= 3
    assert consumer.stats[REGISTRY_EVENTS].consumed == 120


async def test_entries_are_acked_only_after_the_handler_returns(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    slow = Held()
    await start_consumer(settings, consumers, slow, reclaim_idle_ms=60_000)
    sent = await publish(redis, key, 10)
    await asyncio.wait_for(slow.entered.wait(), 5)

    assert await pending(redis, key) == 10
    slow.release.set()
    await wait_until(lambda: slow.has(sent))
    await wait_until(lambda: _is_zero(pending(redis, key)), message="all acked")


async def test_a_failing_handler_leaves_entries_pending_and_the_reclaimer_retries_them(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    applied = Applied()
    failures = 0

    async def fails_twice(events: Sequence[Event]) -> None:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise RuntimeError("database away")
        await applied(events)

    consumer = await start_consumer(settings, consumers, fails_twice, batch_size=20)
    sent = await publish(redis, key, 20)

    await wait_until(lambda: applied.has(sent), timeout=15, message="retried entries applied")
    stats = consumer.stats[REGISTRY_EVENTS]
    assert stats.failed_batches == 1
    assert stats.reclaimed >= 20
    assert stats.dead_lettered == 0
    await wait_until(lambda: _is_zero(pending(redis, key)), message="all acked")


async def test_entries_of_a_consumer_killed_mid_batch_are_reclaimed_by_another(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    first = Applied()
    hung = asyncio.Event()

    async def dies_on_second_batch(events: Sequence[Event]) -> None:
        if first.calls >= 1:
            hung.set()
            await asyncio.Event().wait()  # killed here: never returns, never acks
        await first(events)

    doomed = await start_consumer(
        settings,
        consumers,
        dies_on_second_batch,
        consumer_name="doomed",
        batch_size=10,
        graceful_timeout=0.1,
        reclaim_idle_ms=60_000,
    )
    sent = await publish(redis, key, 50)
    await asyncio.wait_for(hung.wait(), 5)
    await doomed.stop()  # the hung batch is cancelled: its entries stay pending
    consumers.remove(doomed)
    assert len(first.event_ids) == 10
    assert await pending(redis, key) >= 10

    second = Applied()
    survivor = await start_consumer(settings, consumers, second, consumer_name="survivor")
    await wait_until(lambda: _covers(first, second, sent), timeout=15, message="all applied")
    assert first.event_ids | second.event_ids == sent
    assert survivor.stats[REGISTRY_EVENTS].reclaimed >= 10
    await wait_until(lambda: _is_zero(pending(redis, key)), message="all acked")


async def test_an_entry_reclaimed_from_a_batch_still_in_hand_is_counted_once(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    applied = Applied()
    handed: list[uuid.UUID] = []
    started: list[GroupConsumer] = []

    async def outlasts_reclaim_idle(events: Sequence[Event]) -> None:
        handed.extend(e.event_id for e in events)
        if applied.calls == 0:
            # The batch is still in hand when its entries become reclaimable.
            stats = started[0].stats[REGISTRY_EVENTS]
            await wait_until(lambda: _true(stats.reclaimed >= 1), message="reclaimed")
        await applied(events)

    consumer = await start_consumer(settings, consumers, outlasts_reclaim_idle)
    started.append(consumer)
    sent = await publish(redis, key, 5)

    await wait_until(lambda: _true(len(handed) > len(sent)), message="an entry handed twice")
    await consumer.stop()  # lets the reclaimed entry's handler return and its XACK run
    consumers.remove(consumer)
    assert applied.event_ids == sent
    assert await pending(redis, key) == 0
    # Applied twice (the second time a no-op for an idempotent handler), acked once.
    assert consumer.stats[REGISTRY_EVENTS].consumed == len(sent)


async def test_poison_entries_go_to_the_dead_letter_stream_and_the_rest_is_applied(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    good = await publish(redis, key, 3)
    no_envelope = await redis.xadd(key, {"other": "x"})
    bad_json = await redis.xadd(key, {"envelope": "not json{"})
    good |= await publish(redis, key, 3, start=3)
    applied = Applied()
    before = _dead_lettered_metric()

    consumer = await start_consumer(settings, consumers, applied)

    dead_key = dead_letter_key(REGISTRY_EVENTS, settings.stream_namespace)
    dead = await wait_until(lambda: _entries_when(redis, dead_key, 2), message="dead letters")
    await wait_until(lambda: applied.has(good))
    assert applied.event_ids == good
    by_id = {fields[b"original_id"]: fields for _, fields in dead}
    assert set(by_id) == {no_envelope, bad_json}
    assert by_id[bad_json][b"envelope"] == b"not json{"
    assert by_id[no_envelope][b"other"] == b"x"
    for fields in by_id.values():
        assert fields[b"stream"] == REGISTRY_EVENTS.encode()
        assert fields[b"group"] == GROUP.encode()
        assert fields[b"reason"].startswith(b"undecodable")
    # Counted once the MULTI that wrote them has returned, a moment after they show.
    stats = consumer.stats[REGISTRY_EVENTS]
    await wait_until(lambda: _true(stats.dead_lettered == 2), message="dead letters counted")
    assert _dead_lettered_metric() - before == 2
    await wait_until(lambda: _is_zero(pending(redis, key)), message="all acked")


async def test_an_entry_failing_max_deliveries_times_is_dead_lettered(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    sent = await publish(redis, key, 5)
    cursed = sorted(sent)[0]
    applied = Applied()
    attempts = 0

    async def rejects_one(events: Sequence[Event]) -> None:
        nonlocal attempts
        if any(e.event_id == cursed for e in events):
            attempts += 1
            raise ValueError("constraint violated")
        await applied(events)

    consumer = await start_consumer(
        settings, consumers, rejects_one, max_deliveries=3, reclaim_idle_ms=100
    )

    dead_key = dead_letter_key(REGISTRY_EVENTS, settings.stream_namespace)
    dead = await wait_until(lambda: _entries_when(redis, dead_key, 1), timeout=15)
    await wait_until(lambda: applied.has(sent - {cursed}))
    (_, fields) = dead[0]
    assert fields[b"deliveries"] == b"3"
    assert b"constraint violated" in fields[b"reason"]
    # The read batch; the reclaimed batch, then the cursed entry alone (its second
    # delivery); alone again on its third, the last one allowed.
    assert attempts == 4
    stats = consumer.stats[REGISTRY_EVENTS]
    await wait_until(lambda: _true(stats.dead_lettered == 1), message="dead letter counted")
    await wait_until(lambda: _is_zero(pending(redis, key)), message="all acked")


async def test_a_lost_stream_recreates_the_group_and_consumption_resumes(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    applied = Applied()
    consumer = await start_consumer(settings, consumers, applied)
    before = await publish(redis, key, 5)
    await wait_until(lambda: applied.has(before))

    await redis.delete(key)  # what a Redis restart without persistence does
    stats = consumer.stats[REGISTRY_EVENTS]
    await wait_until(lambda: _true(stats.groups_recreated >= 1), message="group recreated")
    after = await publish(redis, key, 5, start=5)

    await wait_until(lambda: applied.has(after), message="consumption resumed")
    await wait_until(lambda: _true(consumer.healthy()), message="healthy again")
    groups = await redis.xinfo_groups(key)
    assert [g["name"] for g in groups] == [GROUP.encode()]


async def test_healthy_is_false_while_a_reader_is_stopped(
    settings: Settings, consumers: list[GroupConsumer]
) -> None:
    consumer = await start_consumer(settings, consumers, Applied())
    assert consumer.healthy()

    await consumer._subscribers[0].stop()
    assert not consumer.healthy()
    # The supervisor replaces it...
    await wait_until(lambda: _true(consumer.healthy()), message="reader replaced")

    # ...but with the supervisor gone nothing does, and readiness must say so.
    assert consumer._supervisor is not None
    consumer._supervisor.cancel()
    await wait_until(lambda: _true(not consumer.healthy()))
    await consumer.stop()
    assert not consumer.healthy()


async def test_stop_lets_the_batch_in_hand_finish_and_be_acked(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    slow = Held()
    consumer = await start_consumer(settings, consumers, slow)
    sent = await publish(redis, key, 10)
    await asyncio.wait_for(slow.entered.wait(), 5)

    stopping = asyncio.create_task(consumer.stop())
    await asyncio.sleep(0)  # let stop() begin before the batch is released
    slow.release.set()
    await stopping
    assert slow.event_ids == sent
    assert await pending(redis, key) == 0


async def test_stats_and_gauges_report_lag_and_pending(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    applied = Applied()
    sent = await publish(redis, key, 30)
    consumer = await start_consumer(settings, consumers, applied)
    await wait_until(lambda: applied.has(sent))

    stats = consumer.stats[REGISTRY_EVENTS]
    await wait_until(lambda: _true(stats.lag == 0 and stats.pending == 0), message="gauges")
    newest: Any = await redis.xrevrange(key, count=1)
    last = newest[0][0]
    assert stats.last_applied_entry_id == last.decode()
    labels = {"group": GROUP, "stream": REGISTRY_EVENTS}
    assert REGISTRY.get_sample_value("cdtt_consumer_lag_entries", labels) == 0
    assert REGISTRY.get_sample_value("cdtt_consumer_pending_entries", labels) == 0


async def _is_zero(value: Awaitable[int]) -> bool:
    return await value == 0


async def _true(value: bool) -> bool:
    return value


async def _covers(first: Applied, second: Applied, sent: set[uuid.UUID]) -> bool:
    return sent <= first.event_ids | second.event_ids


async def _entries_when(redis: Redis, key: str, count: int) -> list[Any]:
    entries: Any = await redis.xrange(key)
    return entries if len(entries) >= count else []


def _dead_lettered_metric() -> float:
    labels = {"group": GROUP, "stream": REGISTRY_EVENTS}
    return REGISTRY.get_sample_value("cdtt_events_dead_lettered_total", labels) or 0.0


async def test_a_stopped_reclaimer_makes_the_consumer_unhealthy_until_replaced(
    settings: Settings, consumers: list[GroupConsumer]
) -> None:
    consumer = await start_consumer(settings, consumers, Applied())
    consumer._reclaimers[0].cancel()
    await wait_until(lambda: _true(not consumer.healthy()), message="unhealthy")
    await wait_until(lambda: _true(consumer.healthy()), message="reclaimer replaced")


async def test_entries_left_pending_by_a_dead_consumer_are_reclaimed_in_batches(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    sent = await publish(redis, key, 120)
    await redis.xgroup_create(key, GROUP, id="0")
    # A consumer that read everything and died before its commit.
    await redis.xreadgroup(GROUP, "dead", {key: ">"}, count=200)
    applied = Applied()

    consumer = await start_consumer(settings, consumers, applied, batch_size=50)

    await wait_until(lambda: applied.has(sent), timeout=15, message="all reclaimed")
    assert consumer.stats[REGISTRY_EVENTS].reclaimed == len(sent)
    assert applied.calls == 3  # XAUTOCLAIM COUNT 50: 50 + 50 + 20, not 120 transactions
    await wait_until(lambda: _is_zero(pending(redis, key)), message="all acked")


async def test_a_reclaimed_batch_that_fails_is_retried_entry_by_entry(
    settings: Settings, redis: Redis, key: str, consumers: list[GroupConsumer]
) -> None:
    sent = await publish(redis, key, 10)
    await redis.xgroup_create(key, GROUP, id="0")
    await redis.xreadgroup(GROUP, "dead", {key: ">"}, count=20)
    cursed = sorted(sent)[3]
    applied = Applied()

    async def rejects_one(events: Sequence[Event]) -> None:
        if any(e.event_id == cursed for e in events):
            raise ValueError("constraint violated")
        await applied(events)

    consumer = await start_consumer(settings, consumers, rejects_one, max_deliveries=2)

    await wait_until(lambda: applied.has(sent - {cursed}), timeout=15, message="rest applied")
    dead_key = dead_letter_key(REGISTRY_EVENTS, settings.stream_namespace)
    dead = await wait_until(lambda: _entries_when(redis, dead_key, 1), timeout=15)
    assert cursed not in applied.event_ids
    assert dead[0][1][b"deliveries"] == b"2"
    stats = consumer.stats[REGISTRY_EVENTS]
    await wait_until(lambda: _true(stats.dead_lettered == 1), message="dead letter counted")
    await wait_until(lambda: _is_zero(pending(redis, key)), message="all acked")
