"""Item 4: end to end, from activity's 202 to the figure visible on /v1/coverage/{code}.

The three services run as `cdtt serve` processes (auth off) on a scratch database. One
province's official units are registered with the registry's own use case, then villages
and teams through the registry's HTTP API. Load: support events at 1,000 events/s in all
(open loop: batch POSTs of background events ten times a second, plus single-event
probes). Each probe goes to a village of its own set; after its 202, the village's
figures are read every 5 ms until its support count includes the probe. The latency is
the time of that read's answer minus the time of the 202 (so it errs high by up to 5 ms).
"""

from __future__ import annotations

import asyncio
import functools
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
from services.registry.adapters.official_units import official_units
from services.registry.cli import load_units
from shared.db import engine_scope

PROVINCE = "01"
PROBE_VILLAGES = 40
BACKGROUND_VILLAGES = 60
PROBES_PER_SECOND = 20
TOTAL_PER_SECOND = 1_000
BATCHES_PER_SECOND = 10
POLL_SECONDS = 0.005
GIVE_UP_SECONDS = 30.0


async def register_teams(registry: Process, count: int) -> list[Team]:
    """One village under each of `count` communes of PROVINCE, and a team in each."""
    connection = Connection(registry.base_url)
    try:
        status, body = await connection.send(get(registry.base_url, f"/v1/units?parent={PROVINCE}"))
        communes = [unit["code"] for unit in orjson.loads(body)["items"]]
        if status != 200 or len(communes) < count:
            raise RuntimeError(f"registry has {len(communes)} communes under {PROVINCE}")
        teams = []
        for n, commune in enumerate(communes[:count]):
            status, body = await connection.send(
                post(registry.base_url, "/v1/units", {"parent_code": commune, "name": f"Thôn {n}"})
            )
            if status != 201:
                raise RuntimeError(f"POST /v1/units: {status} {body[:300]!r}")
            village = orjson.loads(body)
            status, body = await connection.send(
                post(
                    registry.base_url,
                    "/v1/teams",
                    {
                        "unit_code": village["code"],
                        "members": [{"full_name": "Nguyễn Văn An", "role": "leader"}],
                    },
                )
            )
            if status != 201:
                raise RuntimeError(f"POST /v1/teams: {status} {body[:300]!r}")
            team = orjson.loads(body)
            teams.append(Team(uuid.UUID(team["team_id"]), tuple(village["path"]), "village", 1))
        return teams
    finally:
        await connection.close()


async def wait_for_units(aggregator: Process, teams: Sequence[Team]) -> None:
    """Until the aggregator serves every village (its unit and team events applied)."""
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
    """Probe latencies, and the count of support events each probe village should show."""

    latencies: list[float] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    refused: int = 0


async def probe(
    activity: Connection, aggregator: Connection, urls: tuple[str, str], team: Team, probes: Probes
) -> None:
    rng = random.Random()
    village = team.path[-1]
    status, _ = await activity.send(post(urls[0], SINGLE, event_body(rng, team)))
    accepted = time.perf_counter()
    if status != 202:
        probes.refused += 1
        return
    probes.expected[village] = expected = probes.expected.get(village, 0) + 1
    read = get(urls[1], f"/v1/coverage/{village}")
    while time.perf_counter() - accepted < GIVE_UP_SECONDS:
        status, body = await aggregator.send(read)
        if status == 200 and orjson.loads(body)["support"]["events"] >= expected:
            probes.latencies.append(time.perf_counter() - accepted)
            return
        await asyncio.sleep(POLL_SECONDS)
    probes.lost += 1


async def run_probes(
    activity: Process, aggregator: Process, teams: Sequence[Team], seconds: float
) -> Probes:
    probes = Probes()
    urls = (activity.base_url, aggregator.base_url)
    tasks = []
    started = time.perf_counter()
    for n in range(int(seconds * PROBES_PER_SECOND)):
        delay = started + n / PROBES_PER_SECOND - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        # A connection pair per probe village: at most one probe per village in flight
        # at this rate (a village's next probe comes PROBE_VILLAGES / rate = 2 s later).
        pair = (Connection(urls[0]), Connection(urls[1]))
        tasks.append(
            asyncio.create_task(probe(*pair, urls, teams[n % len(teams)], probes), name=f"p{n}")
        )
        tasks[-1].add_done_callback(functools.partial(_close_later, pair))
    await asyncio.gather(*tasks)
    return probes


def _close_later(pair: tuple[Connection, Connection], _: object) -> None:
    for connection in pair:
        asyncio.get_running_loop().create_task(connection.close())


async def run(scratch: Scratch, *, quick: bool) -> ItemResult:
    seconds = 15.0 if quick else 60.0
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
        teams = await register_teams(registry, PROBE_VILLAGES + BACKGROUND_VILLAGES)
        probe_teams, background = teams[:PROBE_VILLAGES], teams[PROBE_VILLAGES:]
        await wait_for_directory(activity, background[-1])
        await wait_for_units(aggregator, probe_teams)
        rng = random.Random(4)

        def batch(_: int) -> bytes:
            events = [event_body(rng, rng.choice(background)) for _ in range(per_batch)]
            return post(activity.base_url, BATCH, {"events": events})

        load, probes = await asyncio.gather(
            open_loop(activity.base_url, batch, BATCHES_PER_SECOND, seconds, connections=4),
            run_probes(activity, aggregator, probe_teams, seconds),
        )
    latencies = probes.latencies
    p50, p99, p999 = (percentile(latencies, q) for q in (50, 99, 99.9))
    worst = max(latencies, default=float("nan"))
    offered = (load.requests * per_batch + len(latencies) + probes.lost) / seconds
    result = ItemResult("4", "End to end")
    note = (
        f"{len(latencies):,} probes over {seconds:.0f} s at {offered:,.0f} events/s offered "
        f"(batch answers: {dict(load.statuses)}); {probes.lost} probes not visible within "
        f"{GIVE_UP_SECONDS:.0f} s, {probes.refused} refused; reads every "
        f"{POLL_SECONDS * 1000:.0f} ms"
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
            worst < 1 and probes.lost == 0,
            note,
        ),
    ]
    result.details = {
        "seconds": seconds,
        "events_per_s_offered": offered,
        "probes": len(latencies),
        "lost": probes.lost,
        "refused": probes.refused,
        "latencies_s": sorted(latencies),
        "batch_statuses": dict(load.statuses),
        "batch_latency_p99_s": percentile(load.latencies, 99),
    }
    return result
