"""Load as the fault: a burst of ten times the steady load, and trimming streams under lag.

- burst: with API keys on (one publisher key, CDTT_RATE_LIMIT_PER_SECOND per key and
  process) and CDTT_MAX_CONNECTIONS on the producers, ten times the steady load for
  CDTT_FAULT_BURST_SECONDS (60 in `make faults`, 10 in CI): writes beyond the limits get
  429 or 503, none gets another 5xx, nothing answered 2xx is lost, and the lag drains;
- trimming under lag: the aggregator is killed and stays down while the load goes on
  and `cdtt streams trim` runs again and again: no entry the aggregator (or activity)
  has not acknowledged is ever removed, so it finds them all when it starts again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.contracts.streams import READERS, StreamLayout, stream_key
from shared.messaging.trimming import trim_streams
from shared.runtime.settings import Settings
from tests.faults.harness import FaultSystem

BURST_SECONDS = float(os.environ.get("CDTT_FAULT_BURST_SECONDS", "10"))
BURST_FACTOR = 10.0
RATE_LIMIT = 100.0  # requests/s per key and process: above the steady load, below the burst
MAX_CONNECTIONS = 48  # per producer process (uvicorn answers 503 beyond)
IN_FLIGHT = 256  # the driver's bound during the whole case
WARMUP_SECONDS = 3.0
TAIL_SECONDS = 3.0

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300 + 2 * BURST_SECONDS)]


async def test_a_burst_of_ten_times_the_load_is_pushed_back_not_lost(
    fault_settings: Settings, tmp_path: Path, attempt: int, measurements: list[dict[str, Any]]
) -> None:
    settings = fault_settings.model_copy(update={"auth": True, "rate_limit_per_second": RATE_LIMIT})
    async with FaultSystem(
        settings, tmp_path, case="burst", attempt=attempt, measurements=measurements
    ) as system:
        created = await system.stack.cdtt(
            "keys", "create", "--role", "publisher", "--province", "15", "--edition", "legacy"
        )
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        limited = {"CDTT_MAX_CONNECTIONS": str(MAX_CONNECTIONS)}
        await system.start(env={"registry": limited, "activity": limited})
        driver = await system.load(
            headers={"Authorization": f"Bearer {key}"}, max_in_flight=IN_FLIGHT
        )
        await driver.run_for(WARMUP_SECONDS)
        burst_at = time.monotonic()
        driver.set_rate(BURST_FACTOR)
        await driver.run_for(BURST_SECONDS)
        driver.set_rate(1.0)
        burst_end = time.monotonic()
        recover_s = await system.recovered(driver.ledger, burst_end)
        await driver.run_for(TAIL_SECONDS)
        ledger = await driver.stop()

        during = ledger.answered_within(burst_at, burst_end)
        pushed_back = sum(n for s, n in during.items() if s in ("429", "503"))
        assert pushed_back > 0, f"no backpressure during the burst: {during}"
        server_errors = {s: n for s, n in ledger.statuses.items() if s[:1] == "5" and s != "503"}
        assert not server_errors, f"answers other than 429/503 under load: {server_errors}"
        accepted = sum(n for s, n in during.items() if s.startswith("20"))

        drain_s = await system.quiet()
        audit = await system.audit(ledger)
        system.record(
            fault=f"Burst: {BURST_FACTOR:g}x the steady load for {BURST_SECONDS:g} s",
            injection=f"load driver at {BURST_FACTOR:g}x its rate (~3,000 writes/s offered, "
            f"{IN_FLIGHT} in flight), one publisher key, CDTT_RATE_LIMIT_PER_SECOND="
            f"{RATE_LIMIT:g}, CDTT_MAX_CONNECTIONS={MAX_CONNECTIONS}",
            ledger=ledger,
            audit=audit,
            recover_s=recover_s,
            drain_s=drain_s,
            burst_seconds=BURST_SECONDS,
            burst_requests_answered=sum(during.values()),
            burst_pushed_back=pushed_back,
            burst_requests_accepted_per_s=round(accepted / BURST_SECONDS, 1),
        )


async def unacknowledged(redis: Redis, namespace: str) -> set[tuple[str, bytes]]:
    """Every entry some reading group has not acknowledged: pending, or never delivered."""
    needed: set[tuple[str, bytes]] = set()
    for stream, groups in READERS.items():
        key = stream_key(stream, namespace)
        infos: Any = {g["name"].decode(): g for g in await redis.xinfo_groups(key)}
        for group in groups:
            pending: Any = await redis.xpending_range(key, group, "-", "+", 100_000)
            needed |= {(stream, p["message_id"]) for p in pending}
            after: Any = await redis.xrange(
                key, min=f"({infos[group]['last-delivered-id'].decode()}"
            )
            needed |= {(stream, entry) for entry, _ in after}
    return needed


async def present(redis: Redis, namespace: str) -> set[tuple[str, bytes]]:
    found: set[tuple[str, bytes]] = set()
    for stream in READERS:
        entries: Any = await redis.xrange(stream_key(stream, namespace))
        found |= {(stream, entry) for entry, _ in entries}
    return found


async def test_trimming_under_lag_never_removes_an_unacknowledged_entry(
    fault_settings: Settings, tmp_path: Path, attempt: int, measurements: list[dict[str, Any]]
) -> None:
    namespace = fault_settings.stream_namespace
    async with FaultSystem(
        fault_settings, tmp_path, case="trim-under-lag", attempt=attempt, measurements=measurements
    ) as system:
        driver = await system.under_load(WARMUP_SECONDS)
        system["aggregator"].kill()  # its batch in hand stays pending; the lag grows
        redis = Redis.from_url(fault_settings.require_redis_url())
        removed, rounds = 0, 0
        try:
            deadline = time.monotonic() + 6.0
            while time.monotonic() < deadline:
                needed = await unacknowledged(redis, namespace)
                for result in await trim_streams(redis, StreamLayout(namespace)):
                    assert result.outcome == "trimmed", result
                    removed += result.removed
                rounds += 1
                missing = needed - await present(redis, namespace)
                assert not missing, f"trimmed {len(missing)} unacknowledged entries"
                await driver.run_for(0.5)
            command = await system.stack.cdtt("streams", "trim")
            assert command.returncode == 0, command.stderr
            lengths = {s: await redis.xlen(stream_key(s, namespace)) for s in READERS}
        finally:
            await redis.aclose()
        assert removed > 0, "nothing was trimmed: the case proves nothing"

        back_at = time.monotonic()
        await system.restart("aggregator")
        recover_s = await system.recovered(driver.ledger, back_at)
        await driver.run_for(TAIL_SECONDS)
        ledger = await driver.stop()

        drain_s = await system.quiet()
        audit = await system.audit(ledger)
        system.record(
            fault="Trimming under lag",
            injection=f"aggregator SIGKILLed; {rounds} safe trims (MINID below every group's "
            "oldest pending/undelivered entry) + `cdtt streams trim` while it was down",
            ledger=ledger,
            audit=audit,
            recover_s=recover_s,
            drain_s=drain_s,
            trimmed_entries=removed,
            stream_lengths_after_trim=lengths,
        )
