"""Relay, group readers, dead letters, trimming and lag on a Redis Cluster, in 4 partitions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from redis.asyncio import RedisCluster

from services.aggregator.adapters.lag import lag_ms
from services.registry.adapters.tables import outbox
from shared.contracts.events import Event, UnitRegistered, entry_fields
from shared.contracts.events.registry import UnitState
from shared.contracts.streams import AGGREGATOR_GROUP, REGISTRY_EVENTS, StreamLayout
from shared.messaging.connection import (
    PartitionsChangedError,
    RedisClient,
    layout_of,
    open_streams,
)
from shared.messaging.consumer import GroupConsumer
from shared.messaging.outbox import OutboxRelay, add_to_outbox
from shared.messaging.trimming import trim_streams
from shared.runtime.db import make_engine
from shared.runtime.settings import Settings
from tests.conftest import CLUSTER_PARTITIONS as PARTITIONS
from tests.waiting import wait_until

PROVINCES = ("01", "15", "31", "46", "79", "96")


def unit_event(n: int, province: str) -> UnitRegistered:
    code = f"{n:05d}"
    payload = UnitState(code=code, name=f"Xã {n}", level="commune", kind="xã", parent_code="1")
    return UnitRegistered.new(edition="2025", unit_path=(province, code), payload=payload)


class Applied:
    def __init__(self) -> None:
        self.event_ids: set[uuid.UUID] = set()

    async def __call__(self, events: Sequence[Event]) -> None:
        self.event_ids |= {e.event_id for e in events}


async def test_partitions_live_on_more_than_one_master_and_dead_letters_share_their_slot(
    cluster_settings: Settings, cluster_redis: RedisClient
) -> None:
    assert isinstance(cluster_redis, RedisCluster)
    await cluster_redis.initialize()  # the slot map is read on first use
    layout = layout_of(cluster_settings, cluster_redis)
    keys = layout.keys(REGISTRY_EVENTS)
    assert len(keys) == PARTITIONS
    slots = [cluster_redis.keyslot(key) for key in keys]
    nodes = {cluster_redis.nodes_manager.get_node_from_slot(slot).name for slot in slots}
    assert len(nodes) > 1
    assert [cluster_redis.keyslot(layout.dead_letter(key)) for key in keys] == slots


async def test_relay_partitions_by_province_and_two_consumers_apply_everything_once(
    cluster_settings: Settings,
) -> None:
    redis, layout = await open_streams(cluster_settings)
    engine = make_engine(cluster_settings.database_url_for("registry"))
    relay = OutboxRelay.from_settings(
        cluster_settings,
        service="registry",
        engine=engine,
        redis=redis,
        layout=layout,
        table=outbox,
    )
    applied = Applied()
    consumers = [
        GroupConsumer.from_settings(
            cluster_settings, group=AGGREGATOR_GROUP, handlers={REGISTRY_EVENTS: applied}
        )
        for _ in range(2)
    ]
    try:
        events = [unit_event(n, PROVINCES[n % len(PROVINCES)]) for n in range(300)]
        async with engine.begin() as conn:
            await add_to_outbox(conn, outbox, events)
        while await relay.relay_batch():
            pass
        # Each event sits in its province's partition, and nowhere else.
        for key in layout.keys(REGISTRY_EVENTS):
            entries = await redis.xrange(key)
            provinces = {
                UnitRegistered.model_validate_json(fields[b"envelope"]).unit_path[0]
                for _, fields in entries
            }
            assert all(layout.key_for(REGISTRY_EVENTS, p) == key for p in provinces)
        assert sum([await redis.xlen(k) for k in layout.keys(REGISTRY_EVENTS)]) == 300

        for consumer in consumers:
            await consumer.start()
        expected = {e.event_id for e in events}
        await wait_until(lambda: _holds(applied.event_ids >= expected), message="all applied")
        consumed = sum(c.stats[REGISTRY_EVENTS].consumed for c in consumers)
        assert consumed == 300
        assert all(c.healthy() for c in consumers)
        await wait_until(
            lambda: _lag_is_zero(redis, layout), message="lag 0 once every partition is acked"
        )
        # Trimming works partition by partition (one key per script, so one node each).
        results = await trim_streams(redis, layout)
        registry = [r for r in results if r.stream.startswith(layout.namespace + REGISTRY_EVENTS)]
        assert len(registry) == PARTITIONS
        assert {r.outcome for r in registry} == {"missing_group"}  # activity never read
    finally:
        for consumer in consumers:
            await consumer.stop()
        await engine.dispose()
        await redis.aclose()


async def test_poison_is_dead_lettered_in_one_transaction_on_the_cluster(
    cluster_settings: Settings, cluster_redis: RedisClient
) -> None:
    layout = layout_of(cluster_settings, cluster_redis)
    key = layout.key_for(REGISTRY_EVENTS, "15")
    good = unit_event(1, "15")
    await cluster_redis.xadd(key, {"envelope": b"{not json"})
    await cluster_redis.xadd(key, entry_fields(good))  # type: ignore[arg-type]
    applied = Applied()
    consumer = GroupConsumer.from_settings(
        cluster_settings, group=AGGREGATOR_GROUP, handlers={REGISTRY_EVENTS: applied}
    )
    await consumer.start()
    try:
        await wait_until(lambda: _holds(good.event_id in applied.event_ids), message="applied")
        await wait_until(
            lambda: _has_entries(cluster_redis, layout.dead_letter(key), 1), message="dead letter"
        )
        assert consumer.stats[REGISTRY_EVENTS].dead_lettered == 1
        summary = await cluster_redis.xpending(key, AGGREGATOR_GROUP)
        assert int(summary["pending"]) == 0
    finally:
        await consumer.stop()


async def test_another_partition_count_is_refused(cluster_settings: Settings) -> None:
    redis, _ = await open_streams(cluster_settings)
    await redis.aclose()
    changed = cluster_settings.model_copy(update={"stream_partitions": PARTITIONS + 1})
    with pytest.raises(PartitionsChangedError, match="CDTT_STREAM_PARTITIONS=4"):
        await open_streams(changed)
    consumer = GroupConsumer.from_settings(
        changed, group=AGGREGATOR_GROUP, handlers={REGISTRY_EVENTS: Applied()}
    )
    with pytest.raises(PartitionsChangedError):
        await consumer.start()
    await consumer.stop()


async def _holds(value: bool) -> bool:
    return value


async def _has_entries(redis: RedisClient, key: str, count: int) -> bool:
    return int(await redis.xlen(key)) >= count


async def _lag_is_zero(redis: RedisClient, layout: StreamLayout) -> bool:
    return await lag_ms(redis, (REGISTRY_EVENTS,), layout, AGGREGATOR_GROUP) == 0
