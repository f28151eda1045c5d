"""Before a command or service first connects: wait, with bounded backoff, for its servers.

On a first `docker compose up` (or any start beside fresh servers) PostgreSQL may still be
initialising, restarting after its init scripts, or Valkey loading its append-only file. Each
command and service therefore tries its first connections again — after 0.2 s, doubling to at
most 5 s between tries, with jitter — for up to CDTT_CONNECT_TIMEOUT_SECONDS (60 s), then
fails with the last error. Errors that no wait can cure (a wrong password, a missing
database) fail at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from shared.runtime.settings import SERVICES, Settings, libpq_url

log = logging.getLogger(__name__)

FIRST_WAIT_SECONDS = 0.2
MAX_WAIT_SECONDS = 5.0
# What a server not up yet looks like: refused or reset connections, unresolvable names
# (a container not started), "the database system is starting up", Valkey loading its AOF.
NOT_UP_YET: tuple[type[BaseException], ...] = (
    OSError,  # includes ConnectionRefusedError, socket.gaierror and TimeoutError
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TooManyConnectionsError,
    RedisConnectionError,  # includes BusyLoadingError
    RedisTimeoutError,
)

Probe = tuple[str, Callable[[], Awaitable[None]]]


def _postgres_probe(url: str) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        connection = await asyncpg.connect(libpq_url(url), timeout=5)
        await connection.close()

    return probe


def _redis_probe(url: str) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        redis = Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        try:
            await redis.ping()
        finally:
            await redis.aclose()

    return probe


def probes(settings: Settings, *, redis: bool = True) -> list[Probe]:
    """One probe per distinct server the settings name (each service's database, the keys')."""
    databases = {settings.database_url_for(service) for service in SERVICES}
    databases.add(settings.auth_database_url_for())
    found: list[Probe] = [("PostgreSQL", _postgres_probe(url)) for url in sorted(databases)]
    if redis and settings.redis_url:
        found.append(("Redis", _redis_probe(settings.redis_url)))
    return found


def _report(name: str) -> Callable[[RetryCallState], None]:
    def report(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s not reachable yet (%s); trying again", name, error)

    return report


async def wait_until_reachable(
    checks: Sequence[Probe],
    within: float,
    *,
    first_wait: float = FIRST_WAIT_SECONDS,
    max_wait: float = MAX_WAIT_SECONDS,
) -> None:
    """Run each probe until it passes; past `within` seconds its last error is raised."""
    for name, probe in checks:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(NOT_UP_YET),
            stop=stop_after_delay(within),
            wait=wait_exponential_jitter(multiplier=first_wait, max=max_wait, jitter=first_wait),
            before_sleep=_report(name),
            reraise=True,
        ):
            with attempt:
                await probe()


async def wait_for_servers(settings: Settings, *, redis: bool = True) -> None:
    """Wait for the servers a command or service is about to use (see the module's doc)."""
    await wait_until_reachable(probes(settings, redis=redis), settings.connect_timeout_seconds)
