"""Processes SIGKILLed under load at their crash points: nothing accepted is lost or doubled.

Each case arms one crash point (shared/runtime/faults.py) in one service with `@N`, so the kill
lands after N passes, in the middle of the steady load; the load goes on while the
service is dead, then the service starts again on its old port, and the audit
(tests/faults/harness.py) compares every answered write with what was counted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.contracts.streams import READERS, stream_key
from shared.runtime.settings import ServiceName, Settings
from tests.faults.harness import FaultSystem

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

DOWN_SECONDS = 2.0  # the load runs on while the killed service is down
TAIL_SECONDS = 3.0  # and after it is back

# (case, service, crash point, pass that kills, what the table says)
CRASHES = [
    (
        "aggregator-before-commit",
        "aggregator",
        "aggregator.before_commit",
        40,
        "SIGKILL of the aggregator mid-batch, before its commit",
    ),
    (
        "aggregator-after-commit",
        "aggregator",
        "aggregator.after_commit",
        40,
        "SIGKILL of the aggregator mid-batch, after its commit (before XACK)",
    ),
    (
        "directory-consumer",
        "activity",
        "consumer.before_ack",
        15,
        "SIGKILL of activity (team directory consumer) after its commit, before XACK",
    ),
    (
        "relay-before-xadd",
        "registry",
        "relay.before_xadd",
        15,
        "SIGKILL of the registry's relay between the write's commit and XADD",
    ),
    (
        "relay-after-xadd",
        "activity",
        "relay.after_xadd",
        15,
        "SIGKILL of activity's relay between XADD and marking the rows sent",
    ),
]


async def pending_entries(settings: Settings) -> int:
    """Entries delivered to some consumer and not acknowledged, over every group."""
    redis = Redis.from_url(settings.require_redis_url())
    try:
        total = 0
        for stream, groups in READERS.items():
            for group in groups:
                summary: Any = await redis.xpending(
                    stream_key(stream, settings.stream_namespace), group
                )
                total += int(summary["pending"])
        return total
    finally:
        await redis.aclose()


@pytest.mark.parametrize(
    ("case", "victim", "point", "nth", "fault"), CRASHES, ids=[c[0] for c in CRASHES]
)
async def test_a_process_killed_at_a_crash_point_loses_and_doubles_nothing(
    fault_settings: Settings,
    tmp_path: Path,
    attempt: int,
    measurements: list[dict[str, Any]],
    case: str,
    victim: ServiceName,
    point: str,
    nth: int,
    fault: str,
) -> None:
    async with FaultSystem(
        fault_settings, tmp_path, case=case, attempt=attempt, measurements=measurements
    ) as system:
        await system.start(env={victim: {"CDTT_FAULTS": f"{point}@{nth}"}})
        driver = await system.load()
        await system.killed(victim)
        left_pending = await pending_entries(fault_settings)
        await driver.run_for(DOWN_SECONDS)

        back_at = time.monotonic()
        await system.restart(victim)
        recover_s = await system.recovered(driver.ledger, back_at)
        await driver.run_for(TAIL_SECONDS)
        ledger = await driver.stop()

        drain_s = await system.quiet()
        audit = await system.audit(ledger)
        assert audit.support_counted >= audit.support_accepted > 0
        system.record(
            fault=fault,
            injection=f"CDTT_FAULTS={point}@{nth} on {victim}; restarted on its port after "
            f"{DOWN_SECONDS:g} s",
            ledger=ledger,
            audit=audit,
            recover_s=recover_s,
            drain_s=drain_s,
            pending_at_kill=left_pending,
        )
