"""The aggregator's consumer group on real Redis: both streams into the figures, exactly once.

Events are XADDed as the producers' relays would (one `envelope` field each), some twice
(a relay resending after a crash); GroupConsumers built as the service builds them apply
them. Also: two consumers in one group under a steady stream, lag_ms, and the live feed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT
from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters.lag import lag_ms
from services.aggregator.adapters.live import LiveFeed
from services.aggregator.domain import NATIONAL
from services.aggregator.entrypoints.subscribers import aggregator_consumer
from shared.contracts.events import Event, SupportRecorded
from shared.contracts.streams import (
    ACTIVITY_EVENTS,
    AGGREGATOR_GROUP,
    ENVELOPE_FIELD,
    REGISTRY_EVENTS,
    STREAMS,
    StreamLayout,
    stream_key,
)
from shared.messaging.consumer import GroupConsumer
from shared.runtime.settings import Settings, libpq_url
from tests.integration.aggregator.figures import figure_differences
from tests.unit.aggregator.fakes import support_recorded, unit_registered
from tests.unit.aggregator.history import World, random_history
from tests.waiting import wait_until


async def publish(redis: Redis, settings: Settings, events: Sequence[Event]) -> None:
    """XADD each event to its stream, as the outbox relays do."""
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            stream = ACTIVITY_EVENTS if isinstance(event, SupportRecorded) else REGISTRY_EVENTS
            fields: dict[FieldT, EncodableT] = {ENVELOPE_FIELD: event.to_json()}
            pipe.xadd(stream_key(stream, settings.stream_namespace), fields)
        await pipe.execute()


def consumer(settings: Settings, engine: AsyncEngine, name: str) -> GroupConsumer:
    # Events read before their unit are held back and retried once reclaimable: soon here.
    tuned = settings.model_copy(update={"consumer_batch_size": 200, "reclaim_idle_ms": 500})
    built = aggregator_consumer(tuned, engine)
    built.consumer_name = name
    return built


async def agree(engine: AsyncEngine, world: World, within: float = 60.0) -> None:
    last: list[str] = []

    async def no_differences() -> bool:
        nonlocal last
        last = await figure_differences(engine, world)
        return not last

    try:
        await wait_until(no_differences, timeout=within, interval=0.2, message="figures")
    except AssertionError:
        raise AssertionError("figures differ:\n" + "\n".join(last[:40])) from None


async def test_both_streams_reach_the_figures_once_whatever_was_sent_twice(
    settings: Settings, engine: AsyncEngine, redis: Redis
) -> None:
    world = random_history(seed=3)
    await publish(redis, settings, [*world.log, *world.log[::5]])
    running = consumer(settings, engine, "solo")
    await running.start()
    sent = len(world.log) + len(world.log[::5])

    async def all_acked() -> bool:
        # Support read before its unit is held back and reclaimed later: acked last.
        return sum(s.consumed for s in running.stats.values()) == sent

    try:
        await agree(engine, world)
        await wait_until(all_acked, timeout=60, message="every entry acknowledged")
        assert running.healthy()
    finally:
        await running.stop()


async def test_two_consumers_in_one_group_under_a_steady_stream_give_exact_figures(
    settings: Settings, engine: AsyncEngine, redis: Redis
) -> None:
    world = random_history(seed=5, provinces=3, operations=3_000)
    consumers = [consumer(settings, engine, f"c{n}") for n in range(2)]
    for running in consumers:
        await running.start()
    try:
        for start in range(0, len(world.log), 150):  # a steady stream, not one burst
            await publish(redis, settings, world.log[start : start + 150])
            await asyncio.sleep(0.02)
        await agree(engine, world)

        async def all_acked() -> bool:
            return sum(s.consumed for c in consumers for s in c.stats.values()) == len(world.log)

        await wait_until(all_acked, timeout=60, message="every entry acknowledged")
        assert all(c.healthy() for c in consumers)
    finally:
        for running in consumers:
            await running.stop()
    shares = [sum(s.consumed for s in c.stats.values()) for c in consumers]
    assert min(shares) > 0, f"both consumers should have taken batches: {shares}"
    assert all(s.failed_batches == 0 for c in consumers for s in c.stats.values())


async def test_lag_is_the_age_of_the_oldest_unapplied_entry_and_zero_once_applied(
    settings: Settings, engine: AsyncEngine, redis: Redis
) -> None:
    namespace = settings.stream_namespace
    assert (
        await lag_ms(redis, STREAMS, StreamLayout(namespace), AGGREGATOR_GROUP) == 0
    )  # no stream yet

    await publish(redis, settings, [unit_registered(("15",), "province")])
    await asyncio.sleep(0.3)
    waiting = await lag_ms(redis, STREAMS, StreamLayout(namespace), AGGREGATOR_GROUP)
    assert 300 <= waiting < 5_000

    running = consumer(settings, engine, "solo")
    await running.start()
    try:

        async def caught_up() -> bool:
            return await lag_ms(redis, STREAMS, StreamLayout(namespace), AGGREGATOR_GROUP) == 0

        await wait_until(caught_up, timeout=20, message="lag 0")
    finally:
        await running.stop()

    # Delivered to a consumer that died without acking: still lag, growing.
    key = stream_key(ACTIVITY_EVENTS, namespace)
    await publish(redis, settings, [support_recorded(uuid.uuid4(), ("15",))])
    await redis.xreadgroup(AGGREGATOR_GROUP, "dead", {key: ">"}, count=10)
    await asyncio.sleep(0.2)
    assert await lag_ms(redis, STREAMS, StreamLayout(namespace), AGGREGATOR_GROUP) >= 200


async def test_the_live_feed_sends_the_changed_units_with_their_new_figures(
    settings: Settings, engine: AsyncEngine, redis: Redis
) -> None:
    async def no_lag() -> int | None:
        return 0

    feed = LiveFeed(
        engine=engine,
        listen_dsn=libpq_url(settings.database_url_for("aggregator")),
        lag_probe=no_lag,
        coalesce_seconds=0.05,
    )
    feed.start()
    running = consumer(settings, engine, "solo")
    try:
        await wait_until(lambda: _true(feed.listening), timeout=10, message="feed listening")
        async with feed.subscribe("legacy") as subscription, feed.subscribe("2025") as other:
            await running.start()
            team = uuid.uuid4()
            await publish(
                redis,
                settings,
                [
                    unit_registered(("15",), "province"),
                    unit_registered(("15", "136"), "district"),
                    support_recorded(team, ("15", "136"), residents=7),
                ],
            )
            seen: dict[str, int] = {}
            while seen.get(NATIONAL) != 7 or seen.get("136") != 7:
                update = await subscription.next(10)
                assert update is not None, "no live update within 10 s"
                assert update.edition == "legacy"
                seen |= {f.key.code: f.counters.support_residents for f in update.figures}
            assert seen["15"] == 7
            assert other.pending() == 0  # nothing of the 2025 edition changed
    finally:
        await running.stop()
        await feed.stop()


async def _true(value: bool) -> bool:
    return value
