"""How every Redis user connects: one Redis or a Redis Cluster, and the stream layout on it.

Relays, consumers, trimming, replay, `cdtt check` and readiness all open their client
here, so one setting (CDTT_REDIS_CLUSTER, else what `INFO cluster` says) decides for all:
redis-py's `RedisCluster` and FastStream's `RedisClusterBroker` on a cluster, `Redis`
and `RedisBroker` otherwise. Here too a starting process checks that the deployment's
partition count is the one it was started with.
"""

from __future__ import annotations

from typing import Any

from faststream.redis import RedisBroker, RedisClusterBroker
from redis.asyncio import Redis, RedisCluster

from shared.contracts.streams import StreamLayout
from shared.runtime.settings import Settings

RedisClient = Redis | RedisCluster
"""What every Redis user holds: the commands it sends are the same on both."""


class PartitionsChangedError(RuntimeError):
    """The streams were laid out with another partition count than this process's."""


async def is_cluster(url: str, configured: bool | None) -> bool:
    """The configured answer, else whether the server at `url` runs in cluster mode."""
    if configured is not None:
        return configured
    probe = Redis.from_url(url)
    try:
        info = await probe.info("cluster")
    finally:
        await probe.aclose()
    return bool(info.get("cluster_enabled"))


def redis_client(url: str, *, cluster: bool) -> RedisClient:
    """A client of the server at `url`; on a cluster, any node's URL finds the others."""
    return RedisCluster.from_url(url) if cluster else Redis.from_url(url)


def stream_broker(url: str, *, cluster: bool, **options: Any) -> RedisBroker:
    """The FastStream broker the group readers run on."""
    if cluster:
        return RedisClusterBroker(url, **options)
    return RedisBroker(url, **options)


async def open_redis(settings: Settings) -> RedisClient:
    """A client of CDTT_REDIS_URL, single node or cluster as settings (or the server) say."""
    url = settings.require_redis_url()
    return redis_client(url, cluster=await is_cluster(url, settings.redis_cluster))


def layout_of(settings: Settings, redis: RedisClient) -> StreamLayout:
    """Where the streams live for this deployment, on this client's kind of server."""
    return StreamLayout(
        namespace=settings.stream_namespace,
        partitions=settings.stream_partitions,
        cluster=isinstance(redis, RedisCluster),
    )


async def check_partitions(redis: RedisClient, layout: StreamLayout) -> None:
    """Record the partition count on first start; refuse to run with another one.

    Events already on the streams sit in the partitions of the old count: readers with a
    new count would miss some and writers would break one team's order. Migrating takes
    a drain and a rebuild (README, "Scaling out").
    """
    key = layout.partitions_key
    await redis.set(key, layout.partitions, nx=True)
    recorded = await redis.get(key)
    if recorded is not None and int(recorded) != layout.partitions:
        raise PartitionsChangedError(
            f"the streams were laid out with CDTT_STREAM_PARTITIONS={int(recorded)} "
            f"but this process has {layout.partitions}; changing the partition count of a "
            "running deployment is refused: drain the consumers, stop every service, delete "
            f"the streams and {key!r}, restart with the new count and replay the producers' "
            "outboxes (README, 'Scaling out')"
        )


async def open_streams(settings: Settings) -> tuple[RedisClient, StreamLayout]:
    """A client of CDTT_REDIS_URL and the deployment's stream layout, its partitions checked."""
    redis = await open_redis(settings)
    layout = layout_of(settings, redis)
    try:
        await check_partitions(redis, layout)
    except BaseException:
        await redis.aclose()
        raise
    return redis, layout
