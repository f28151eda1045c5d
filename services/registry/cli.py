"""`cdtt units load`, `cdtt registry place-backlog` and `cdtt registry replay`: official units
into the registry, legacy teams onto the 2025 map, events out again.

Loading writes each new unit and its `unit.registered` outbox row in one transaction per
province (a batched INSERT ... ON CONFLICT DO NOTHING RETURNING, then one batched outbox
insert), so a second load finds everything present and emits nothing. When Redis is
configured the command then drains the outbox itself; otherwise the registry service's
relay sends the events when it runs.

The placement backlog is a command, not a data migration: placing needs the 2025 units and
the crosswalk, which `units load` brings after `cdtt migrate`, and it emits events (a
`team.placed` per team, a `unit.registered` per carried village) that the aggregator must
learn. `units load` runs it after loading, so loading the 2025 map places the legacy teams
that were waiting for it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry import use_cases
from services.registry.adapters.coordinates import CoordinatesMissingError, unit_centres
from services.registry.adapters.official_units import (
    ProvinceUnits,
    UnknownProvinceError,
    official_links,
    official_units,
    with_centres,
)
from services.registry.adapters.repositories import unit_of_work
from services.registry.adapters.tables import outbox
from services.registry.placements import with_came_from
from shared.contracts.units import Edition
from shared.messaging.outbox import outbox_backlog
from shared.messaging.replay import publish_backlog, replay_command
from shared.runtime import reachable
from shared.runtime.db import engine_scope, make_sessionmaker
from shared.runtime.migrations import migrate_service
from shared.runtime.settings import Settings

units_app = typer.Typer(no_args_is_help=True, help="Official administrative units.")
registry_app = typer.Typer(no_args_is_help=True, help="Registry operations.")
console = Console(stderr=True)


@dataclass(frozen=True)
class LoadReport:
    edition: Edition
    provinces: int
    units: int
    new_units: int
    seconds: float
    new_links: int = 0


Advance = Callable[[ProvinceUnits, int], None]


async def load_units(
    engine: AsyncEngine,
    edition: Edition,
    provinces: Sequence[ProvinceUnits],
    advance: Advance | None = None,
) -> LoadReport:
    """Register every unit not yet registered, and the crosswalk rows touching it, one
    province per transaction."""
    started = time.perf_counter()
    sessionmaker = make_sessionmaker(engine)
    links = official_links(edition, [p.code for p in provinces])
    new_units = new_links = 0
    for province in provinces:
        batch = with_came_from(province.units, links[province.code])
        async with unit_of_work(sessionmaker) as uow:
            added = await use_cases.register_units(uow, batch)
            new_links += await use_cases.register_links(uow, links[province.code])
        new_units += len(added)
        if advance is not None:
            advance(province, len(added))
    return LoadReport(
        edition=edition,
        provinces=len(provinces),
        units=sum(len(p.units) for p in provinces),
        new_units=new_units,
        seconds=time.perf_counter() - started,
        new_links=new_links,
    )


# Teams placed per transaction: each locks its team (by id order) and maybe a 2025 commune.
BACKLOG_BATCH = 200
BACKLOG_ACTOR = "cdtt registry place-backlog"


@dataclass(frozen=True)
class BacklogReport:
    placed: int  # on a 2025 unit, or counted in a 2025 province (district, province teams)
    waiting: int  # split or unmapped commune: unplaced until a publisher places them
    seconds: float


async def place_backlog(engine: AsyncEngine) -> BacklogReport:
    """Place every legacy team stored without a 2025 placement, as `register_team` would
    now (use_cases.place_backlog_team), one page of teams per transaction."""
    started = time.perf_counter()
    sessionmaker = make_sessionmaker(engine)
    placed = waiting = 0
    after: uuid.UUID | None = None
    while True:
        async with unit_of_work(sessionmaker) as uow:
            page = await uow.teams.without_placement("2025", after=after, limit=BACKLOG_BATCH)
            for team_id in page:
                team = await use_cases.place_backlog_team(uow, team_id, BACKLOG_ACTOR)
                found = None if team is None else team.placement_in("2025")
                if found is not None and found.placed:
                    placed += 1
                elif found is not None:
                    waiting += 1
        if len(page) < BACKLOG_BATCH:
            break
        after = page[-1]
    return BacklogReport(placed, waiting, time.perf_counter() - started)


def _print_backlog(report: BacklogReport) -> None:
    console.print(
        f"placement backlog: {report.placed:,} legacy teams placed on the 2025 map, "
        f"{report.waiting:,} waiting for a publisher (split or unmapped commune); "
        f"{report.seconds:.1f} s (teams of provinces whose 2025 units are not loaded wait "
        "for `cdtt units load --edition 2025`)"
    )


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


async def _publish_with_progress(engine: AsyncEngine, settings: Settings) -> None:
    if not settings.redis_url:
        backlog = await outbox_backlog(engine, outbox)
        console.print(f"{backlog:,} events wait in the outbox; the registry's relay sends them.")
        return
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("publishing", total=await outbox_backlog(engine, outbox))
        sent = await publish_backlog(
            engine,
            settings,
            service="registry",
            table=outbox,
            advance=lambda n: progress.advance(task, n),
        )
    console.print(f"published {sent:,} events in {time.perf_counter() - started:.1f} s")


async def _load(
    settings: Settings, edition: Edition, provinces: Sequence[str], publish: bool
) -> LoadReport:
    selected = official_units(edition, provinces)
    try:
        selected = with_centres(selected, unit_centres(edition))
    except CoordinatesMissingError as error:
        # Coordinates only feed the dashboard's map: the units load without them.
        console.print(f"[yellow]units load without coordinates: {error}[/yellow]")
    async with engine_scope(settings.database_url_for("registry"), pool_size=2) as engine:
        await migrate_service(engine, "registry")
        with _progress() as progress:
            task = progress.add_task(
                f"edition {edition}", total=sum(len(p.units) for p in selected)
            )

            def advance(province: ProvinceUnits, _added: int) -> None:
                progress.update(task, advance=len(province.units), description=province.name)

            report = await load_units(engine, edition, selected, advance)
        console.print(
            f"edition {edition}: {report.units:,} units in {report.provinces} provinces; "
            f"{report.new_units:,} new, each with its unit.registered event; "
            f"{report.units - report.new_units:,} already registered; "
            f"{report.new_links:,} new crosswalk rows; {report.seconds:.1f} s"
        )
        backlog = await place_backlog(engine)
        if backlog.placed or backlog.waiting:
            _print_backlog(backlog)
        if publish:
            await _publish_with_progress(engine, settings)
    return report


@units_app.command("load")
def load(
    edition: Annotated[
        Edition | None, typer.Option(help="which edition (default CDTT_EDITION)")
    ] = None,
    province: Annotated[
        list[str] | None,
        typer.Option("--province", help="only this province code (repeatable); default all"),
    ] = None,
    publish: Annotated[
        bool, typer.Option(help="send the new events to Redis now (when CDTT_REDIS_URL is set)")
    ] = True,
) -> None:
    """Load the official units of an edition (idempotent: a second run adds nothing)."""
    settings = Settings()
    asyncio.run(reachable.wait_for_servers(settings, redis=publish))
    try:
        asyncio.run(_load(settings, edition or settings.edition, province or [], publish))
    except UnknownProvinceError as error:
        raise typer.BadParameter(str(error), param_hint="--province") from error


@registry_app.command("place-backlog")
def place_backlog_command(
    publish: Annotated[
        bool, typer.Option(help="send the new events to Redis now (when CDTT_REDIS_URL is set)")
    ] = True,
) -> None:
    """Place legacy teams stored without a 2025 placement (before placements existed, or
    before the 2025 units were loaded); idempotent: a second run places nothing."""
    settings = Settings()
    asyncio.run(reachable.wait_for_servers(settings, redis=publish))
    asyncio.run(_place_backlog(settings, publish))


async def _place_backlog(settings: Settings, publish: bool) -> None:
    async with engine_scope(settings.database_url_for("registry"), pool_size=2) as engine:
        await migrate_service(engine, "registry")
        _print_backlog(await place_backlog(engine))
        if publish:
            await _publish_with_progress(engine, settings)


registry_app.command("replay")(replay_command("registry", outbox))
