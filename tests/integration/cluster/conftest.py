"""Settings on a Redis Cluster (tests/cluster.py finds or starts one) with partitioned streams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from shared.messaging.connection import RedisClient, redis_client
from shared.runtime.settings import Settings
from tests.cluster import find_cluster
from tests.conftest import isolated_settings
from tests.servers import Servers

PARTITIONS = 4


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    with find_cluster() as url:
        yield url


@pytest.fixture
async def cluster_settings(
    servers: Servers, template_database: str, cluster_url: str
) -> AsyncIterator[Settings]:
    """The test's own database and namespace, its streams in 4 partitions on the cluster."""
    on_cluster = Servers(cluster_url, servers.database_url, "cluster")
    async with isolated_settings(
        on_cluster,
        template_database,
        prefix="cdtt_c",
        namespace="cluster",
        auth=False,
        redis_cluster=True,
        stream_partitions=PARTITIONS,
    ) as isolated:
        yield isolated


@pytest.fixture
async def cluster_redis(cluster_settings: Settings) -> AsyncIterator[RedisClient]:
    client = redis_client(cluster_settings.require_redis_url(), cluster=True)
    yield client
    await client.aclose()
