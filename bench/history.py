"""Item 10: figures as of a date and monthly series beside the live read, and the history's size.

A 2025 map of 34 provinces (communes and villages under each) and teams with five years
of dated changes (established 2021–2025, members replaced twice, a fifth dissolved), plus
support on random days, are applied through the aggregator's own use case (apply_batch on
the SQL store, in process: every version of every team, as the streams would carry it).
Then the aggregator serves them and each read is timed over HTTP in one closed loop
(p99): a province's live figures (the baseline), the same as of a day, its 24-month
series, and the nation with its provinces live and as of a day. The history's storage is
pg_total_relation_size of figures_by_day and support_by_day over the events applied.
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from sqlalchemy import text

from bench.harness import ItemResult, Row, Scratch, cdtt_serve, fmt_ms, percentile
from bench.loadgen import closed_loop, get
from bench.placements import unit_event
from services.aggregator.adapters.store import SqlProjectionStore
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import Event, TeamCreated, TeamDissolved, TeamMembersChanged
from shared.contracts.events.activity import CATEGORIES, SupportRecorded, SupportState
from shared.contracts.events.registry import MemberState, TeamState
from shared.contracts.streams import ACTIVITY_EVENTS, REGISTRY_EVENTS
from shared.contracts.units import Level
from shared.runtime.db import engine_scope

PROVINCES: Final = 34
FIRST_DAY, LAST_DAY = date(2021, 1, 1), date(2025, 12, 31)
AS_OF, SERIES_FROM, SERIES_TO = "2024-06-30", "2023-07", "2025-06"
READS, QUICK_READS = 200, 150
BATCH = 1_000


@dataclass(frozen=True)
class Scale:
    communes_per_province: int
    villages_per_commune: int
    teams: int
    support_events: int


FULL = Scale(100, 3, 100_000, 200_000)
QUICK = Scale(30, 3, 10_000, 20_000)


def say(message: str) -> None:
    print(f"  history: {message}", file=sys.stderr, flush=True)


def units(scale: Scale) -> list[tuple[tuple[str, ...], Level]]:
    found: list[tuple[tuple[str, ...], Level]] = []
    for p in range(1, PROVINCES + 1):
        province = (f"{p:02d}",)
        found.append((province, "province"))
        for c in range(scale.communes_per_province):
            commune = (*province, f"{p:02d}{c:03d}")
            found.append((commune, "commune"))
            found += [
                ((*commune, f"{commune[-1]}-{v:03d}"), "village")
                for v in range(scale.villages_per_commune)
            ]
    return found


def member(joined: date, left: date | None = None) -> MemberState:
    return MemberState(
        member_id=uuid.uuid4(),
        full_name="Thành viên",
        role="member",
        joined_on=joined,
        left_on=left,
    )


def day_between(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, max((last - first).days, 0)))


def team_history(rng: random.Random, path: tuple[str, ...], level: Level) -> list[Event]:
    """Every version of one team: created, members replaced twice, a fifth dissolved."""
    team_id = uuid.uuid4()
    established = day_between(rng, FIRST_DAY, LAST_DAY - timedelta(days=60))
    current = [member(established) for _ in range(rng.randint(2, 6))]
    former: list[MemberState] = []
    day = established
    events: list[Event] = []

    def state(version: int, dissolved: date | None = None) -> TeamState:
        return TeamState(
            team_id=team_id,
            unit_code=path[-1],
            unit_level=level,
            status="dissolved" if dissolved else "active",
            established_on=established,
            dissolved_on=dissolved,
            version=version,
            members=tuple(current),
            former_members=tuple(former),
        )

    events.append(TeamCreated.new(edition="2025", unit_path=path, payload=state(1)))
    for version in (2, 3):
        day = day_between(rng, day, min(day + timedelta(days=300), LAST_DAY))
        leaving = current.pop(0)
        former.append(leaving.model_copy(update={"left_on": day}))
        current.append(member(day))
        events.append(
            TeamMembersChanged.new(edition="2025", unit_path=path, payload=state(version))
        )
    if rng.random() < 0.2:
        day = day_between(rng, day, LAST_DAY)
        events.append(TeamDissolved.new(edition="2025", unit_path=path, payload=state(4, day)))
    return events


async def run(scratch: Scratch, *, quick: bool) -> ItemResult:
    scale = QUICK if quick else FULL
    teams = int(os.environ.get("BENCH_HISTORY_TEAMS", scale.teams))
    reads = QUICK_READS if quick else READS
    result = ItemResult("10", "Figures as of a date, monthly series")
    rng = random.Random(10)
    async with scratch.space("history") as settings:
        tree = units(scale)
        places = [(path, level) for path, level in tree if level != "province"]
        team_events = [team_history(rng, *rng.choice(places)) for _ in range(teams)]
        by_version: dict[int, list[Event]] = {}
        for history in team_events:
            for event in history:
                by_version.setdefault(event.payload.version, []).append(event)  # type: ignore[union-attr]
        support: list[Event] = [
            SupportRecorded.new(
                edition="2025",
                unit_path=path,
                payload=SupportState(
                    team_id=uuid.uuid4(),
                    unit_code=path[-1],
                    occurred_on=day_between(rng, FIRST_DAY, LAST_DAY),
                    category=rng.choice(CATEGORIES),
                    residents_helped=rng.randint(1, 9),
                ),
            )
            for path, _ in (rng.choice(places) for _ in range(scale.support_events))
        ]
        team_changes = sum(len(h) for h in team_events)
        async with engine_scope(settings.database_url_for("aggregator"), pool_size=1) as engine:
            started = time.monotonic()
            batches: list[tuple[str, list[Event]]] = [
                (REGISTRY_EVENTS, [unit_event("2025", path, level) for path, level in tree])
            ]
            for version in sorted(by_version):
                events = by_version[version]
                batches += [
                    (REGISTRY_EVENTS, events[i : i + BATCH]) for i in range(0, len(events), BATCH)
                ]
            batches += [
                (ACTIVITY_EVENTS, support[i : i + BATCH]) for i in range(0, len(support), BATCH)
            ]
            for n, (stream, batch) in enumerate(batches):
                async with engine.begin() as conn:
                    await apply_batch(SqlProjectionStore(conn, live_channel=None), stream, batch)
                if n % 50 == 0:
                    say(f"batch {n + 1} of {len(batches)}")
            applied_s = time.monotonic() - started
            say(f"{team_changes:,} team and {len(support):,} support events in {applied_s:.0f} s")
            async with engine.connect() as conn:
                sizes = {
                    table: int(
                        await conn.scalar(
                            text(f"SELECT pg_total_relation_size('aggregator.{table}')")
                        )
                        or 0
                    )
                    for table in ("figures_by_day", "support_by_day", "figures", "team_states")
                }
                rows = {
                    table: int(
                        await conn.scalar(text(f"SELECT count(*) FROM aggregator.{table}")) or 0
                    )
                    for table in ("figures_by_day", "support_by_day")
                }
        async with AsyncExitStack() as services:
            aggregator = await services.enter_async_context(cdtt_serve("aggregator", settings))
            base = aggregator.base_url
            series = f"from={SERIES_FROM}&to={SERIES_TO}"
            paths = {
                "province live": "/v1/coverage/01?edition=2025",
                "province as_of": f"/v1/coverage/01?edition=2025&as_of={AS_OF}",
                "province series": f"/v1/coverage/01/series?edition=2025&{series}",
                "commune live": "/v1/coverage/01000?edition=2025",
                "commune as_of": f"/v1/coverage/01000?edition=2025&as_of={AS_OF}",
                "nation live": "/v1/coverage?edition=2025",
                "nation as_of": f"/v1/coverage?edition=2025&as_of={AS_OF}",
                "nation series": f"/v1/coverage/series?edition=2025&{series}",
            }
            p99: dict[str, float] = {}
            medians: dict[str, float] = {}
            for label, path in paths.items():
                load = await closed_loop(base, [get(base, path) for _ in range(reads)], 1, 200)
                p99[label] = percentile(load.latencies, 99)
                medians[label] = percentile(load.latencies, 50)
                say(f"{label}: p99 {fmt_ms(p99[label])}, median {fmt_ms(medians[label])}")
    for scope in ("province", "commune", "nation"):
        live = p99[f"{scope} live"]
        for kind in ("as_of", "series"):
            label = f"{scope} {kind}"
            if label not in p99:
                continue
            what = (
                f"as_of={AS_OF}"
                if kind == "as_of"
                else f"series {SERIES_FROM}..{SERIES_TO} (24 months)"
            )
            target = "< 20 ms" if kind == "as_of" else "< 50 ms"
            limit = 0.02 if kind == "as_of" else 0.05
            result.rows.append(
                Row(
                    "10",
                    f"{scope} {what}, p99 of {reads} reads, 1 connection",
                    fmt_ms(p99[label]) + f" (median {fmt_ms(medians[label])})",
                    fmt_ms(live) + f" (median {fmt_ms(medians[f'{scope} live'])}): the live read",
                    f"p99 {p99[label] / live:,.1f}×, median "
                    f"{medians[label] / medians[f'{scope} live']:,.1f}× the live read's",
                    target,
                    p99[label] < limit,
                )
            )
    history_bytes = sizes["figures_by_day"]
    result.rows.append(
        Row(
            "10",
            f"history storage per team change (figures_by_day, {rows['figures_by_day']:,} rows)",
            f"{history_bytes / team_changes:,.0f} B",
            f"{sizes['figures'] / team_changes:,.0f} B (live figures table, per team change)",
            f"{history_bytes / 1e6:,.1f} MB for {team_changes:,} team events",
            "—",
            None,
        )
    )
    result.rows.append(
        Row(
            "10",
            f"support history per support event (support_by_day, {rows['support_by_day']:,} rows)",
            f"{sizes['support_by_day'] / len(support):,.0f} B",
            "—",
            f"{sizes['support_by_day'] / 1e6:,.1f} MB for {len(support):,} events",
            "—",
            None,
        )
    )
    result.rows[0].note = (
        f"{teams:,} teams on {len(tree):,} units of 34 provinces, {team_changes:,} team events "
        f"(5 years of dates), {len(support):,} support events, applied in process in "
        f"{applied_s:.0f} s"
    )
    result.details = {
        "scale": scale.__dict__ | {"teams": teams},
        "p99_s": p99,
        "median_s": medians,
        "bytes": sizes,
        "rows": rows,
        "team_events": team_changes,
        "support_events": len(support),
        "applied_s": applied_s,
    }
    return result
