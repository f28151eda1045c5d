"""shared.messaging.trimming on real Redis: entries go once every reading group acked them."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from shared.contracts.streams import REGISTRY_EVENTS, stream_key
from shared.messaging.trimming import trim_stream
from shared.runtime.settings import Settings

pytestmark = pytest.mark.integration


async def fill(redis: Redis, key: str, count: int) -> list[bytes]:
    return [await redis.xadd(key, {"envelope": f"{n}"}) for n in range(count)]


async def read(redis: Redis, key: str, group: str, count: int) -> list[bytes]:
    answer: Any = await redis.xreadgroup(group, "c", {key: ">"}, count=count)
    return [entry_id for entry_id, _ in answer[0][1]]


async def remaining(redis: Redis, key: str) -> list[bytes]:
    entries: Any = await redis.xrange(key)
    return [entry_id for entry_id, _ in entries]


async def test_nothing_goes_while_a_reading_group_is_missing(
    redis: Redis, settings: Settings
) -> None:
    key = stream_key(REGISTRY_EVENTS, settings.stream_namespace)
    ids = await fill(redis, key, 5)
    await redis.xgroup_create(key, "a", id="0")
    await redis.xack(key, "a", *await read(redis, key, "a", 5))

    result = await trim_stream(redis, key, ["a", "b"])

    assert (result.outcome, result.detail, result.removed) == ("missing_group", "b", 0)
    assert await remaining(redis, key) == ids


async def test_pending_and_undelivered_entries_stay_acknowledged_ones_go(
    redis: Redis, settings: Settings
) -> None:
    key = stream_key(REGISTRY_EVENTS, settings.stream_namespace)
    ids = await fill(redis, key, 10)
    for group in ("a", "b", "c"):
        await redis.xgroup_create(key, group, id="0")
    await redis.xack(key, "a", *await read(redis, key, "a", 10))  # a: all acknowledged
    b_read = await read(redis, key, "b", 10)
    await redis.xack(key, "b", *b_read[:4], *b_read[6:])  # b: 4 and 5 pending
    await redis.xack(key, "c", *await read(redis, key, "c", 8))  # c: 8 and 9 undelivered

    result = await trim_stream(redis, key, ["a", "b", "c"])

    assert result.outcome == "trimmed"
    assert result.removed == 4
    assert await remaining(redis, key) == ids[4:]
    pending: Any = await redis.xpending(key, "b")
    assert (pending["pending"], pending["min"]) == (2, ids[4])


async def test_a_group_that_read_nothing_keeps_everything(redis: Redis, settings: Settings) -> None:
    key = stream_key(REGISTRY_EVENTS, settings.stream_namespace)
    ids = await fill(redis, key, 3)
    await redis.xgroup_create(key, "a", id="0")

    result = await trim_stream(redis, key, ["a"])

    assert (result.outcome, result.removed) == ("trimmed", 0)
    assert await remaining(redis, key) == ids


async def test_everything_acknowledged_leaves_only_the_last_delivered_entry(
    redis: Redis, settings: Settings
) -> None:
    key = stream_key(REGISTRY_EVENTS, settings.stream_namespace)
    ids = await fill(redis, key, 6)
    await redis.xgroup_create(key, "a", id="0")
    await redis.xack(key, "a", *await read(redis, key, "a", 6))

    result = await trim_stream(redis, key, ["a"])

    assert (result.removed, await remaining(redis, key)) == (5, ids[5:])
