"""What the streams deliver goes wrong under load: duplicates, shuffled order, poison entries.

- duplicates: every entry so far XADDed a second time, then both producers replay their
  whole retained outbox (`cdtt <service> replay`): each duplicate is absorbed, counted
  in `duplicates_absorbed`, and changes no figure;
- out of order: the load's entries of both streams, shuffled together, XADDed into a
  fresh namespace that a new aggregator (on a fresh projection database) reads;
- poison: malformed entries and well-formed events for units nobody registered, in both
  streams: each lands in the dead-letter stream of every group that reads it, and
  nothing else does.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.contracts.events import SupportRecorded, TeamCreated, entry_fields
from shared.contracts.events.activity import SupportState
from shared.contracts.events.registry import MemberState, TeamState
from shared.contracts.streams import (
    ACTIVITY_EVENTS,
    ACTIVITY_GROUP,
    AGGREGATOR_GROUP,
    READERS,
    REGISTRY_EVENTS,
    stream_key,
)
from shared.runtime.settings import Settings
from tests.conftest import database_copy, database_url
from tests.faults.harness import FaultSystem, add_copies
from tests.servers import Servers

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

WARMUP_SECONDS = 4.0
TAIL_SECONDS = 3.0


def _marked(output: str) -> int:
    found = re.search(r"marked ([\d,]+)", output)
    assert found, output
    return int(found.group(1).replace(",", ""))


async def test_duplicated_entries_and_a_replayed_stream_are_absorbed(
    fault_settings: Settings, tmp_path: Path, attempt: int, measurements: list[dict[str, Any]]
) -> None:
    async with FaultSystem(
        fault_settings, tmp_path, case="duplicates", attempt=attempt, measurements=measurements
    ) as system:
        driver = await system.under_load(WARMUP_SECONDS)
        copies = await add_copies(fault_settings, None)
        replayed = 0
        for service in ("registry", "activity"):
            done = await system.stack.cdtt(service, "replay")
            assert done.returncode == 0, done.stderr
            replayed += _marked(done.stderr)
        injected_at = time.monotonic()
        recover_s = await system.recovered(driver.ledger, injected_at)
        await driver.run_for(TAIL_SECONDS)
        ledger = await driver.stop()

        drain_s = await system.quiet()
        audit = await system.audit(ledger)
        # Every copy and every replayed row reached the aggregator and changed nothing.
        assert audit.duplicates_absorbed == copies + replayed
        system.record(
            fault="Duplicates: entries XADDed twice, whole streams replayed",
            injection=f"{copies} entries of both streams XADDed again, then `cdtt registry "
            f"replay` + `cdtt activity replay` ({replayed} retained rows sent again)",
            ledger=ledger,
            audit=audit,
            recover_s=recover_s,
            drain_s=drain_s,
        )


async def test_entries_delivered_shuffled_give_the_same_figures(
    fault_settings: Settings,
    servers: Servers,
    tmp_path: Path,
    attempt: int,
    measurements: list[dict[str, Any]],
) -> None:
    # The aggregator that reads the shuffled streams gets a projection database of its own.
    shuffled_ns = f"{fault_settings.stream_namespace}shuffled:"
    async with (
        database_copy(servers, _name(fault_settings), "cdtt_fs") as shuffled_db,
        FaultSystem(
            fault_settings,
            tmp_path,
            case="out-of-order",
            attempt=attempt,
            measurements=measurements,
        ) as system,
    ):
        aggregator_url = database_url(servers.database_url, shuffled_db)
        driver = await system.under_load(WARMUP_SECONDS + TAIL_SECONDS, ("registry", "activity"))
        ledger = await driver.stop()
        await system.quiet(readers={REGISTRY_EVENTS: (ACTIVITY_GROUP,)})

        moved = await shuffle_into(fault_settings, shuffled_ns, seed=attempt)
        started = time.monotonic()
        await system.stack.start(
            "aggregator",
            env={
                "CDTT_STREAM_NAMESPACE": shuffled_ns,
                "CDTT_AGGREGATOR_DATABASE_URL": aggregator_url,
            },
        )
        aggregator_only = dict.fromkeys(READERS, (AGGREGATOR_GROUP,))
        drain_s = await system.quiet(namespace=shuffled_ns, readers=aggregator_only)
        audit = await system.audit(
            ledger,
            namespace=shuffled_ns,
            readers=aggregator_only,
            aggregator_database_url=aggregator_url,
        )
        system.record(
            fault="Out of order: team and support events delivered shuffled",
            injection=f"{moved} entries of both streams shuffled together, XADDed into a "
            "fresh namespace read by a fresh aggregator",
            ledger=ledger,
            audit=audit,
            recover_s=None,
            drain_s=drain_s,
            applied_s=round(time.monotonic() - started, 2),
        )


def _name(settings: Settings) -> str:
    """The database a test's settings point at."""
    url = settings.database_url or ""
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


async def shuffle_into(settings: Settings, namespace: str, *, seed: int) -> int:
    """Every entry of both streams, in one shuffled order, XADDed under `namespace`."""
    redis = Redis.from_url(settings.require_redis_url())
    try:
        entries: list[tuple[str, Any]] = []
        for stream in READERS:
            found: Any = await redis.xrange(stream_key(stream, settings.stream_namespace))
            entries += [(stream, fields) for _, fields in found]
        random.Random(seed).shuffle(entries)
        async with redis.pipeline(transaction=False) as pipe:
            for stream, fields in entries:
                pipe.xadd(stream_key(stream, namespace), fields)
            await pipe.execute()
        return len(entries)
    finally:
        await redis.aclose()


def poison_entries() -> dict[str, list[dict[str, str]]]:
    """Per stream: malformed entries, and valid events for units that were never registered."""
    ghost_team = TeamCreated.new(
        edition="legacy",
        unit_path=("15", "136", "99998", "99998-001"),
        payload=TeamState(
            team_id=uuid.uuid4(),
            unit_code="99998-001",
            unit_level="village",
            status="active",
            version=1,
            members=(MemberState(member_id=uuid.uuid4(), full_name="Ma Văn Ma", role="leader"),),
        ),
    )
    ghost_support = SupportRecorded.new(
        edition="legacy",
        unit_path=("15", "136", "99999"),
        payload=SupportState(
            team_id=uuid.uuid4(),
            unit_code="99999",
            occurred_on=date(2025, 5, 1),
            category="vneid",
            residents_helped=7,
        ),
    )
    malformed = [
        {"envelope": "{not json"},
        {"note": "no envelope field at all"},
        {"envelope": '{"type": "team.created", "event_id": "not-a-uuid"}'},
        {"envelope": ghost_support.to_json().replace('"legacy"', '"1999"')},  # no such edition
    ]
    return {
        REGISTRY_EVENTS: [*malformed, entry_fields(ghost_team)],
        ACTIVITY_EVENTS: [*malformed, entry_fields(ghost_support)],
    }


async def test_poison_entries_are_dead_lettered_and_nothing_else(
    fault_settings: Settings, tmp_path: Path, attempt: int, measurements: list[dict[str, Any]]
) -> None:
    async with FaultSystem(
        fault_settings, tmp_path, case="poison", attempt=attempt, measurements=measurements
    ) as system:
        driver = await system.under_load(WARMUP_SECONDS)
        expected: dict[tuple[str, str], set[str]] = {}
        redis = Redis.from_url(fault_settings.require_redis_url())
        try:
            for stream, entries in poison_entries().items():
                key = stream_key(stream, fault_settings.stream_namespace)
                for number, fields in enumerate(entries):
                    added: Any = await redis.xadd(key, fields)  # type: ignore[arg-type]
                    entry_id = added.decode()
                    malformed = number < len(entries) - 1
                    for group in READERS[stream]:
                        # Activity keeps teams, not units: a ghost unit is no poison to it.
                        if malformed or group == AGGREGATOR_GROUP:
                            expected.setdefault((stream, group), set()).add(entry_id)
        finally:
            await redis.aclose()
        injected_at = time.monotonic()
        recover_s = await system.recovered(driver.ledger, injected_at)
        await driver.run_for(TAIL_SECONDS)
        ledger = await driver.stop()

        drain_s = await system.quiet()
        audit = await system.audit(ledger, poison=expected)
        system.record(
            fault="Poison: malformed entries, events for unknown units",
            injection="per stream: 4 malformed entries (not JSON, no envelope field, invalid "
            "envelope, unknown edition) and 1 valid event for a unit nobody registered",
            ledger=ledger,
            audit=audit,
            recover_s=recover_s,
            drain_s=drain_s,
        )
