"""Item 4: end to end, from activity's 202 to the figure visible on /v1/coverage/{code}.

The three services run as `cdtt serve` processes (auth off) on a scratch database. One
province's official units are registered with the registry's own use case, then villages
and teams through the registry's HTTP API. Load: support events at 1,000 events/s in all
(open loop: batch POSTs of background events ten times a second, plus single-event
probes twenty times a second). Probes go in turn to the villages of one commune; the
figures rows that /v1/coverage/{code} serves are read every 5 ms from PostgreSQL (a GET
from that moment shows the probe; polling the endpoint itself would load the aggregator
with the measurement), and a probe's latency runs from its 202 to the first read that
includes it (so it errs high by up to one period). Afterwards each probe village is read
over HTTP, which must show every probe.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import orjson

from bench.harness import ItemResult, Process, Row, Scratch, cdtt_serve, fmt_ms, percentile
from bench.ingest import BATCH, SINGLE, event_body, wait_for_directory
from bench.loadgen import Connection, get, open_loop, post
from bench.traffic import Team
from services.aggregator.adapters.audit import support_counts
from services.registry.adapters.official_units import official_units
from services.registry.cli import load_units
from shared.contracts.units import Edition
from shared.runtime.db import engine_scope
from shared.runtime.settings import Settings

EDITION: Edition = "2025"
PROVINCE = "01"
PROBE_VILLAGES = 20
BACKGROUND_COMMUNES = 20
PROBES_PER_SECOND = 20
TOTAL_PER_SECOND = 1_000
BATCHES_PER_SECOND = 10
POLL_SECONDS = 0.005
GIVE_UP_SECONDS = 30.0


async def register_teams(registry: Process, communes: int, per_commune: int) -> list[Team]:
    """`per_commune` villages under each of the first `communes` communes of PROVINCE, a team in
    each (the registry numbers a commune's villages under a lock: one commune at a time)."""
    connection = Connection(registry.base_url)
    try:
        status, body = await connection.send(get(registry.base_url, f"/v1/units?parent={PROVINCE}"))
        codes = [unit["code"] for unit in orjson.loads(body)["items"]]
        if status != 200 or len(codes) < communes:
            raise RuntimeError(f"registry has {len(codes)} communes under {PROVINCE}")
        teams = []
        for commune in codes[:communes]:
            for n in range(per_commune):
                teams.append(await _village_with_team(connection, registry, commune, n))
        return teams
    finally:
        await connection.close()


async def _village_with_team(
    connection: Connection, registry: Process, commune: str, n: int
) -> Team:
    status, body = await connection.send(
        post(registry.base_url, "/v1/units", {"parent_code": commune, "name": f"Thôn {n + 1}"})
    )
    if status != 201:
        raise RuntimeError(f"POST /v1/units: {status} {body[:300]!r}")
    village = orjson.loads(body)
    member = {"full_name": "Nguyễn Văn An", "role": "leader"}
    status, body = await connection.send(
        post(registry.base_url, "/v1/teams", {"unit_code": village["code"], "members": [member]})
    )
    if status != 201:
        raise RuntimeError(f"POST /v1/teams: {status} {body[:300]!r}")
    team = orjson.loads(body)
    return Team(uuid.UUID(team["team_id"]), tuple(village["path"]), "village", 1)


async def wait_for_units(aggregator: Process, teams: Sequence[Team]) -> None:
    """Until the aggregator serves every village with its team (unit and team events applied)."""
    connection = Connection(aggregator.base_url)
    deadline = time.monotonic() + 60
    try:
        for team in teams:
            while True:
                status, body = await connection.send(
                    get(aggregator.base_url, f"/v1/coverage/{team.path[-1]}")
                )
                if status == 200 and orjson.loads(body)["has_team"]:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"aggregator never served {team.path[-1]}: {status}")
                await asyncio.sleep(0.05)
    finally:
        await connection.close()


@dataclass
class Probes:
    """Probes accepted (202 time, village, the count that shows it) and their latencies."""

    waiting: list[tuple[float, str, int]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    done: bool = False


async def send_probes(
    activity: Process, teams: Sequence[Team], seconds: float, probes: Probes
) -> None:
    """PROBES_PER_SECOND single POSTs, each to the next probe village in turn."""
    rng = random.Random(5)
    connection = Connection(activity.base_url)
    started = time.perf_counter()
    try:
        for n in range(int(seconds * PROBES_PER_SECOND)):
            delay = started + n / PROBES_PER_SECOND - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            team = teams[n % len(teams)]
            village = team.path[-1]
            status, _ = await connection.send(
                post(activity.base_url, SINGLE, event_body(rng, team))
            )
            if status != 202:
                probes.refused += 1
                continue
            probes.sent[village] = count = probes.sent.get(village, 0) + 1
            probes.waiting.append((time.perf_counter(), village, count))
    finally:
        await connection.close()
        probes.done = True


async def watch_probes(settings: Settings, villages: Sequence[str], probes: Probes) -> None:
    """Read the probe villages' committed figures every POLL_SECONDS, straight from the row
    that /v1/coverage/{code} serves (a GET from then on shows the probe); a probe is seen once
    its village's count reaches it. Not over HTTP: a read costs the aggregator ~4 ms of CPU,
    and a watcher reading that often would be a large part of the load it measures."""
    async with (
        engine_scope(settings.database_url_for("aggregator"), pool_size=1) as engine,
        engine.connect() as connection,
    ):
        conn = await connection.execution_options(isolation_level="AUTOCOMMIT")
        while not probes.done or probes.waiting:
            counts = await support_counts(conn, EDITION, villages)
            seen_at = time.perf_counter()
            still = []
            for accepted, village, count in probes.waiting:
                if counts.get(village, 0) >= count:
                    probes.latencies.append(seen_at - accepted)
                elif seen_at - accepted < GIVE_UP_SECONDS:
                    still.append((accepted, village, count))
            probes.waiting = still
            await asyncio.sleep(POLL_SECONDS)


async def served_counts(aggregator: Process, villages: Sequence[str]) -> dict[str, int]:
    """Each probe village's support count as GET /v1/coverage/{code} serves it."""
    connection = Connection(aggregator.base_url)
    try:
        counts = {}
        for village in villages:
            status, body = await connection.send(
                get(aggregator.base_url, f"/v1/coverage/{village}")
            )
            counts[village] = orjson.loads(body)["support"]["events"] if status == 200 else -1
        return counts
    finally:
        await connection.close()


async def run(scratch: Scratch, *, quick: bool) -> ItemResult:
    seconds = 10.0 if quick else 60.0
    background_rate = TOTAL_PER_SECOND - PROBES_PER_SECOND
    per_batch = background_rate // BATCHES_PER_SECOND
    async with scratch.space("e2e") as settings, AsyncExitStack() as stack:
        async with engine_scope(settings.database_url_for("registry"), pool_size=1) as engine:
            await load_units(engine, "2025", official_units("2025", [PROVINCE]))
        registry, activity, aggregator = await asyncio.gather(
            stack.enter_async_context(cdtt_serve("registry", settings)),
            stack.enter_async_context(cdtt_serve("activity", settings)),
            stack.enter_async_context(cdtt_serve("aggregator", settings)),
        )
        probe_teams = await register_teams(registry, 1, PROBE_VILLAGES)
        background = await register_teams(registry, BACKGROUND_COMMUNES, 1)
        await wait_for_directory(activity, background[-1])
        await wait_for_units(aggregator, probe_teams)
        rng = random.Random(4)

        def batch(_: int) -> bytes:
            events = [event_body(rng, rng.choice(background)) for _ in range(per_batch)]
            return post(activity.base_url, BATCH, {"events": events})

        probes = Probes()
        villages = [team.path[-1] for team in probe_teams]
        load, *_ = await asyncio.gather(
            open_loop(activity.base_url, batch, BATCHES_PER_SECOND, seconds, connections=4),
            send_probes(activity, probe_teams, seconds, probes),
            watch_probes(settings, villages, probes),
        )
        lost = sum(probes.sent.values()) - len(probes.latencies)
        # What the endpoint serves once the load is over: every probe, no more, no fewer.
        served = await served_counts(aggregator, villages)
        agree = served == {village: probes.sent.get(village, 0) for village in villages}
    latencies = probes.latencies
    p50, p99, p999 = (percentile(latencies, q) for q in (50, 99, 99.9))
    worst = max(latencies, default=float("nan"))
    offered = (load.requests * per_batch + sum(probes.sent.values())) / seconds
    result = ItemResult("4", "End to end")
    note = (
        f"{len(latencies):,} probes over {seconds:.0f} s at {offered:,.0f} events/s offered "
        f"(batch answers: {dict(load.statuses)}); {lost} probes not visible within "
        f"{GIVE_UP_SECONDS:.0f} s, {probes.refused} refused; the figures rows /v1/coverage "
        f"serves read every {POLL_SECONDS * 1000:.0f} ms from PostgreSQL; afterwards GET "
        f"/v1/coverage/{{village}} showed every probe: {'yes' if agree else 'NO'}"
    )
    result.rows += [
        Row(
            "4",
            "202 → visible on /v1/coverage/{code}: p50",
            fmt_ms(p50),
            "—",
            fmt_ms(p50),
            "—",
            None,
        ),
        Row("4", "… p99", fmt_ms(p99), "—", fmt_ms(p99), "< 50 ms", p99 < 0.05),
        Row("4", "… p99.9", fmt_ms(p999), "—", fmt_ms(p999), "—", None),
        Row(
            "4",
            "… max",
            fmt_ms(worst),
            "—",
            fmt_ms(worst),
            "< 1 s",
            worst < 1 and lost == 0 and agree,
            note,
        ),
    ]
    result.details = {
        "seconds": seconds,
        "events_per_s_offered": offered,
        "probes": len(latencies),
        "lost": lost,
        "http_agrees": agree,
        "refused": probes.refused,
        "latencies_s": sorted(latencies),
        "batch_statuses": {str(k): v for k, v in load.statuses.items()},
        "batch_latency_p99_s": percentile(load.latencies, 99),
    }
    return result
