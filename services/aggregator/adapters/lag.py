"""How far the figures trail the streams, read from the consumer group's state in Redis.

`lag_ms` is the age of the oldest entry, on either stream, whose effect may not be in the
figures yet: an entry the group "aggregator" has not acknowledged (pending with some
consumer, or not delivered at all). Its age is the Redis server clock minus the time
in its entry id (XADD time, in ms). When the group has acknowledged every entry of both
streams, lag_ms is 0. So the figures hold every event XADDed more than lag_ms ago.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import RedisCluster

from shared.contracts.streams import AGGREGATOR_GROUP, STREAMS, StreamLayout
from shared.messaging.connection import RedisClient

log = logging.getLogger(__name__)


def entry_ms(entry_id: bytes | str) -> int:
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(raw.split("-", 1)[0])


def _group_info(groups: Any, group: str) -> dict[str, Any] | None:
    if isinstance(groups, Exception):
        return None  # the stream does not exist yet
    for info in groups:
        name = info.get("name")
        if (name.decode() if isinstance(name, bytes) else name) == group:
            return dict(info)
    return None


async def oldest_unapplied_ms(
    redis: RedisClient, streams: Sequence[str], layout: StreamLayout, group: str
) -> tuple[int, int | None]:
    """(Redis server time in ms, XADD time of the oldest unacknowledged entry or None).

    Every partition counts; on a cluster the pipeline goes to each key's node and TIME
    to one of them (the nodes' clocks are assumed close, as NTP keeps them).
    """
    keys = [key for stream in streams for key in layout.keys(stream)]
    # A cluster pipeline takes keyed commands only: TIME goes on its own (any node's).
    cluster = isinstance(redis, RedisCluster)
    async with redis.pipeline(transaction=False) as pipe:
        if not cluster:
            pipe.time()
        for key in keys:
            pipe.xinfo_groups(key)
            pipe.xpending(key, group)
        first = await pipe.execute(raise_on_error=False)
    if cluster:
        first = [await redis.time(), *first]
    seconds, micros = first[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    oldest: list[int] = []
    undelivered_from: list[tuple[str, str]] = []
    for index, key in enumerate(keys):
        groups, pending = first[1 + 2 * index], first[2 + 2 * index]
        info = _group_info(groups, group)
        if info is None:
            # No group yet: nothing of this stream was applied; no stream: nothing to apply.
            if not isinstance(groups, Exception):
                undelivered_from.append((key, "-"))
            continue
        if not isinstance(pending, Exception) and pending.get("pending"):
            oldest.append(entry_ms(pending["min"]))
        if info.get("lag") != 0:  # None when Redis cannot tell (after deletions): look
            last = info["last-delivered-id"]
            undelivered_from.append(
                (key, "(" + (last.decode() if isinstance(last, bytes) else last))
            )
    if undelivered_from:
        async with redis.pipeline(transaction=False) as pipe:
            for key, start in undelivered_from:
                pipe.xrange(key, min=start, max="+", count=1)
            for entries in await pipe.execute():
                if entries:
                    oldest.append(entry_ms(entries[0][0]))
    return now_ms, min(oldest) if oldest else None


async def lag_ms(
    redis: RedisClient, streams: Sequence[str], layout: StreamLayout, group: str
) -> int:
    now_ms, oldest = await oldest_unapplied_ms(redis, streams, layout, group)
    return 0 if oldest is None else max(0, now_ms - oldest)


@dataclass(frozen=True)
class LagReader:
    """The aggregator's lag_ms; None when Redis cannot be asked (figures stay servable)."""

    redis: RedisClient
    layout: StreamLayout
    group: str = AGGREGATOR_GROUP
    streams: tuple[str, ...] = STREAMS

    async def __call__(self) -> int | None:
        try:
            return await lag_ms(self.redis, self.streams, self.layout, self.group)
        except Exception as error:
            log.warning("could not read the consumer lag: %s", error)
            return None
