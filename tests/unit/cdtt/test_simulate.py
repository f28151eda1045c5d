"""The load generator's guards: loopback targets only, and a schedule bounded in time."""

from __future__ import annotations

import time

import pytest

from cdtt.demo.simulate import RateLimiter, SimulationError, percentile, require_loopback


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8001", "http://localhost:8002", "http://[::1]:8003", "http://127.9.9.9"],
)
def test_loopback_targets_are_allowed(url: str) -> None:
    require_loopback(url)


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8001", "http://192.168.1.2", "http://8.8.8.8", "http://0.0.0.0:1"]
)
def test_any_other_target_is_refused(url: str) -> None:
    with pytest.raises(SimulationError, match="only sends load to this machine"):
        require_loopback(url)


async def test_the_rate_limiter_hands_out_slots_at_the_rate_until_the_duration() -> None:
    limiter = RateLimiter(rate=4, duration=1.0)
    limiter.start()
    started = time.monotonic()
    granted = [await limiter.acquire() for _ in range(6)]
    assert granted == [True, True, True, True, False, False]  # slots at 0, .25, .5, .75 s
    assert 0.7 <= time.monotonic() - started < 1.0


def test_percentiles() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == pytest.approx(50.5, abs=0.1)
    assert percentile(values, 0.99) == pytest.approx(99.0, abs=0.1)
    assert percentile([3.0], 0.9) == 3.0
