"""First connections wait for servers that are not up yet, and only for those (reachable.py)."""

from __future__ import annotations

import os

import pytest

from shared.runtime import reachable
from shared.runtime.settings import MissingServerError, Settings


class Flaky:
    """A probe that fails with `error` `failures` times, then passes."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error


FAST = {"first_wait": 0.001, "max_wait": 0.002}


@pytest.fixture(autouse=True)
def no_cdtt_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the arguments alone (CI exports the servers' URLs)."""
    for name in [name for name in os.environ if name.startswith("CDTT_")]:
        monkeypatch.delenv(name)


async def test_a_server_that_comes_up_is_waited_for() -> None:
    postgres = Flaky(3, ConnectionRefusedError("refused"))
    redis = Flaky(1, OSError("Name does not resolve"))
    await reachable.wait_until_reachable([("PostgreSQL", postgres), ("Redis", redis)], 30, **FAST)
    assert (postgres.calls, redis.calls) == (4, 2)


async def test_an_error_no_wait_can_cure_fails_at_once() -> None:
    wrong = Flaky(5, ValueError("password authentication failed"))
    with pytest.raises(ValueError, match="password"):
        await reachable.wait_until_reachable([("PostgreSQL", wrong)], 30, **FAST)
    assert wrong.calls == 1


async def test_past_the_timeout_the_last_error_is_raised() -> None:
    never = Flaky(10**9, ConnectionRefusedError("refused"))
    with pytest.raises(ConnectionRefusedError):
        await reachable.wait_until_reachable([("Redis", never)], 0.05, **FAST)
    assert never.calls > 1


def test_one_probe_per_distinct_server() -> None:
    settings = Settings(
        redis_url="redis://redis:6379/0",
        database_url="postgresql://cdtt@postgres/cdtt",
        aggregator_database_url="postgresql://cdtt@replica/cdtt",
        _env_file=None,  # type: ignore[call-arg]
    )
    assert [name for name, _ in reachable.probes(settings)] == ["PostgreSQL"] * 2 + ["Redis"]
    assert [name for name, _ in reachable.probes(settings, redis=False)] == ["PostgreSQL"] * 2
    with pytest.raises(MissingServerError):
        reachable.probes(Settings(_env_file=None))  # type: ignore[call-arg]


def test_the_default_wait_is_bounded() -> None:
    assert Settings(_env_file=None).connect_timeout_seconds == 60  # type: ignore[call-arg]
    assert reachable.MAX_WAIT_SECONDS <= 5
