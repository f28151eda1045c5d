"""A client of the cluster the test's settings name (the settings: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.messaging.connection import RedisClient, redis_client
from shared.runtime.settings import Settings


@pytest.fixture
async def cluster_redis(cluster_settings: Settings) -> AsyncIterator[RedisClient]:
    client = redis_client(cluster_settings.require_redis_url(), cluster=True)
    yield client
    await client.aclose()
