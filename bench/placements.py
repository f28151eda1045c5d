"""The 2025 reform's costs: loading the crosswalk for every legacy unit, and the aggregator's
apply rate for team events carrying a 2025 placement vs the same events without one.

Apply: the real `apply_batch` on the real store (PostgreSQL), batches of 500 team.created
events, each team on its own legacy commune; "with" adds a placement on a 2025 commune
(whole-commune case, so coverage moves on both maps). The two kinds run alternately, on
fresh teams every round, in one database whose units are registered beforehand; figures are
medians of the rounds and their ratio. Run: `python -m bench.placements [--rounds N]`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid

from bench.harness import Scratch
from services.aggregator.adapters.store import projection_store
from services.aggregator.use_cases import apply_batch
from services.registry.adapters.official_units import official_links, official_units
from services.registry.adapters.repositories import unit_of_work
from services.registry.adapters.tables import unit_links
from services.registry.cli import load_units
from services.registry.use_cases import register_links
from shared.contracts.events import Event, TeamCreated, UnitRegistered
from shared.contracts.events.registry import MemberState, Placement, TeamState, UnitState
from shared.contracts.streams import REGISTRY_EVENTS
from shared.contracts.units import Edition, Level, UnitPath
from shared.runtime.db import engine_scope, make_sessionmaker

COMMUNES = 2_000
BATCH = 500


def unit_event(edition: Edition, path: UnitPath, level: Level) -> UnitRegistered:
    """A unit.registered as the registry emits it (named after its code)."""
    return UnitRegistered.new(
        edition=edition,
        unit_path=path,
        payload=UnitState(
            code=path[-1],
            name=f"Đơn vị {path[-1]}",
            level=level,
            kind=level,
            parent_code=path[-2] if len(path) > 1 else None,
        ),
    )


def units() -> list[Event]:
    found: list[Event] = [
        unit_event("legacy", ("15",), "province"),
        unit_event("2025", ("15",), "province"),
    ]
    found += [unit_event("legacy", ("15", "136"), "district")]
    for n in range(COMMUNES):
        found.append(unit_event("legacy", ("15", "136", f"{n:05d}"), "commune"))
        found.append(unit_event("2025", ("15", f"{n // 3:05d}"), "commune"))
    return found


def teams(count: int, *, placed: bool) -> list[Event]:
    members = tuple(
        MemberState(member_id=uuid.uuid4(), full_name=f"Thành viên {n}", role="member")
        for n in range(6)
    )
    events: list[Event] = []
    for n in range(count):
        commune = f"{n % COMMUNES:05d}"
        placements = (
            (
                Placement(
                    edition="2025",
                    unit_path=("15", f"{(n % COMMUNES) // 3:05d}"),
                    unit_level="commune",
                ),
            )
            if placed
            else ()
        )
        events.append(
            TeamCreated.new(
                edition="legacy",
                unit_path=("15", "136", commune),
                payload=TeamState(
                    team_id=uuid.uuid4(),
                    unit_code=commune,
                    unit_level="commune",
                    status="active",
                    version=1,
                    members=members,
                    placements=placements,
                ),
            )
        )
    return events


async def apply_rate(rounds: int) -> dict[str, list[float]]:
    scratch = Scratch()
    await scratch.prepare()
    rates: dict[str, list[float]] = {"without": [], "with": []}
    try:
        async with (
            scratch.space("placements") as settings,
            engine_scope(settings.database_url_for("aggregator"), pool_size=2) as engine,
        ):
            all_units = units()
            for start in range(0, len(all_units), BATCH):
                async with projection_store(engine) as store:
                    await apply_batch(store, REGISTRY_EVENTS, all_units[start : start + BATCH])
            for round_ in range(rounds):
                order = ("without", "with") if round_ % 2 == 0 else ("with", "without")
                for kind in order:
                    log = teams(4 * BATCH, placed=kind == "with")
                    started = time.perf_counter()
                    for start in range(0, len(log), BATCH):
                        async with projection_store(engine) as store:
                            await apply_batch(store, REGISTRY_EVENTS, log[start : start + BATCH])
                    rates[kind].append(len(log) / (time.perf_counter() - started))
    finally:
        await scratch.close()
    return rates


async def crosswalk_load() -> tuple[float, float, float, int]:
    """Seconds to read the crosswalk of all 63 legacy provinces, and to load the legacy units
    with it (the second figure includes the units), and the rows stored."""
    provinces = official_units("legacy")
    started = time.perf_counter()
    links = official_links("legacy", [p.code for p in provinces])
    read = time.perf_counter() - started
    scratch = Scratch()
    await scratch.prepare()
    try:
        async with (
            scratch.space("crosswalk") as settings,
            engine_scope(settings.database_url_for("registry"), pool_size=2) as engine,
        ):
            report = await load_units(engine, "legacy", provinces)
            # The crosswalk alone, stored again into an empty table in one transaction.
            async with engine.begin() as conn:
                await conn.execute(unit_links.delete())
            started = time.perf_counter()
            async with unit_of_work(make_sessionmaker(engine)) as uow:
                stored = await register_links(uow, [k for v in links.values() for k in v])
            alone = time.perf_counter() - started
    finally:
        await scratch.close()
    return read, report.seconds, alone, stored


async def main(rounds: int) -> None:
    read, loaded, alone, rows = await crosswalk_load()
    print(
        f"crosswalk: {rows:,} rows for 63 legacy provinces; read from vietnam-provinces "
        f"{read:.2f} s, stored alone {alone:.2f} s; all legacy units with it {loaded:.1f} s"
    )
    rates = await apply_rate(rounds)
    without, with_ = statistics.median(rates["without"]), statistics.median(rates["with"])
    print(
        f"apply team.created: without placement {without:,.0f}/s, with {with_:,.0f}/s "
        f"(medians of {rounds}); ratio with/without {with_ / without:.2f}"
    )


if __name__ == "__main__":
    arguments = sys.argv[1:]
    asyncio.run(main(int(arguments[1]) if arguments[:1] == ["--rounds"] else 5))
