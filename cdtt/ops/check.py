"""`cdtt check`: recount the figures from the producers' own data, compare with the aggregator's.

Each producer recounts from its own database (they may be separate servers): the registry
its units and active teams with their members (services/registry/adapters/recount.py),
activity its support events (services/activity/adapters/recount.py). This command rolls
those up the unit paths by DESIGN.md's definitions and compares every counter of every
unit and nation, and every support split, with the aggregator's projections
(services/aggregator/adapters/audit.py). Run it once the system is quiet (lag 0);
`--wait` retries until the figures agree or the time is up, for a system still settling.
`--rebuild` also rebuilds the projections from the streams into a shadow copy (by the
live consumer's rules, `cdtt aggregator rebuild` without the swap) and lists every unit
whose rebuilt figures differ from the live ones.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from services.activity.adapters.recount import SupportSum, recount_support
from services.aggregator.adapters.audit import Figures, add_split, stored_figures
from services.aggregator.domain import (
    COUNTERS,
    FigureDelta,
    FigureKey,
    SupportDelta,
    SupportKey,
    ancestor_keys,
    scope_keys,
)
from services.aggregator.rebuild import RebuildRefusedError, rebuild
from services.registry.adapters.recount import RegistryRecount, recount_registry
from shared.contracts.events.activity import OUTCOME_KINDS
from shared.contracts.units import EDITIONS, Edition
from shared.messaging.connection import open_streams
from shared.runtime.db import engine_scope
from shared.runtime.settings import ServiceName, Settings

app = typer.Typer(add_completion=False)


def add_registry(recount: RegistryRecount, into: Figures) -> None:
    """Units (the denominators), and active teams with their members, rolled up."""
    for unit in recount.units:
        key = FigureKey(unit.edition, unit.code)
        into.units.add(key)
        into.counters.setdefault(key, FigureDelta())
        for ancestor in ancestor_keys(unit.edition, unit.path):
            into.add(ancestor, **{f"total_{unit.level}": 1})
    covered: set[tuple[Edition, tuple[str, ...], str]] = set()
    for team in recount.active_teams:
        # A team counts wherever it is: its own unit, and its placement on the other map.
        for key in scope_keys(team.edition, team.path):
            into.add(key, teams=1, members=team.members, members_trained=team.trained)
            if not team.placed:
                into.add(key, unplaced_teams=1, unplaced_members=team.members)
        if team.level is None:
            continue  # counted in its province, covering no unit (district, unplaced)
        into.add(FigureKey(team.edition, team.path[-1]), direct_teams=1)
        covered.add((team.edition, team.path, team.level))
    for edition, path, level in covered:
        for key in ancestor_keys(edition, path):
            into.add(key, **{f"covered_{level}": 1})


def conservation(recount: RegistryRecount, aggregated: Figures) -> list[str]:
    """The reform's invariant on the aggregator's figures: every legacy province's active
    teams and members are counted, placed or unplaced, in the 2025 province(s) it went into.

    Provinces are grouped by the crosswalk (several legacy provinces went into one 2025
    province, one went into two); each group compares its legacy figures with its 2025
    figures less the teams registered on the 2025 map itself. Groups with a province not
    on the aggregator's 2025 map yet are left out (their teams have nowhere to count).
    """
    group: dict[tuple[Edition, str], tuple[Edition, str]] = {}

    def root(node: tuple[Edition, str]) -> tuple[Edition, str]:
        while group.setdefault(node, node) != node:
            node = group[node]
        return node

    for legacy, new in recount.province_links:
        group[root(("legacy", legacy))] = root(("2025", new))
    home_2025: dict[str, list[int]] = {}
    for team in recount.active_teams:
        if team.edition == "2025" and team.home:
            row = home_2025.setdefault(team.path[0], [0, 0])
            row[0] += 1
            row[1] += team.members
    sums: dict[tuple[Edition, str], dict[Edition, list[int]]] = {}
    missing: set[tuple[Edition, str]] = set()
    for node in list(group):
        edition, code = node
        key = FigureKey(edition, code)
        top = root(node)
        if key not in aggregated.units:
            missing.add(top)
            continue
        figures = aggregated.counters.get(key) or FigureDelta()
        own = home_2025.get(code, [0, 0]) if edition == "2025" else [0, 0]
        row = sums.setdefault(top, {"legacy": [0, 0], "2025": [0, 0]})[edition]
        row[0] += figures.teams - own[0]
        row[1] += figures.members - own[1]
    lines = []
    for top, by_edition in sorted(sums.items()):
        if top in missing or by_edition["legacy"] == by_edition["2025"]:
            continue
        members_of = sorted(node for node in group if root(node) == top)
        old = "/".join(code for edition, code in members_of if edition == "legacy")
        new = "/".join(code for edition, code in members_of if edition == "2025")
        lines.append(
            f"conservation legacy {old} → 2025 {new}: legacy teams/members "
            f"{by_edition['legacy'][0]}/{by_edition['legacy'][1]}, counted in 2025 "
            f"{by_edition['2025'][0]}/{by_edition['2025'][1]}"
        )
    return lines


def add_support(
    sums: Iterable[SupportSum],
    into: Figures,
    placements: Mapping[uuid.UUID, Sequence[tuple[Edition, tuple[str, ...]]]],
    editions: Collection[Edition] = EDITIONS,
) -> None:
    """Support events of `editions`, rolled up from the unit path each was recorded under
    and from wherever the registry places its team on the other map (as the figures count
    them); `sums` and `placements` may name other editions, left out here."""
    for row in sums:
        outcomes = dict(zip(OUTCOME_KINDS, row.outcomes, strict=True))
        placed = placements.get(row.team_id, ()) if row.team_id else ()
        for edition, path in ((row.edition, row.unit_path), *placed):
            if edition not in editions:
                continue
            for key in scope_keys(edition, path):
                into.add(
                    key, support_events=row.events, support_residents=row.residents, **outcomes
                )
                for split, bucket in (
                    (into.by_category, row.category),
                    (into.by_month, row.month),
                ):
                    more = SupportDelta(row.events, row.residents, *row.outcomes)
                    add_split(split, SupportKey(key.edition, key.code, bucket), more)


def _name(key: FigureKey) -> str:
    return f"{key.edition} {key.code or '(national)'}"


def differences(recounted: Figures, aggregated: Figures) -> list[str]:
    """One line per figure that differs: `<edition> <code>: <figure> aggregator=A recount=R`."""
    lines = []
    for key in sorted(recounted.units - aggregated.units):
        lines.append(f"{_name(key)}: unit missing from the aggregator")
    for key in sorted(aggregated.units - recounted.units):
        lines.append(f"{_name(key)}: unit unknown to the registry")
    zero = FigureDelta()
    for key in sorted(recounted.counters.keys() | aggregated.counters.keys()):
        expected = recounted.counters.get(key, zero)
        actual = aggregated.counters.get(key, zero)
        for name in COUNTERS:
            if getattr(expected, name) != getattr(actual, name):
                lines.append(
                    f"{_name(key)}: {name} aggregator={getattr(actual, name)} "
                    f"recount={getattr(expected, name)}"
                )
    for what, expected_split, actual_split in (
        ("support by category", recounted.by_category, aggregated.by_category),
        ("support by month", recounted.by_month, aggregated.by_month),
    ):
        for split_key in sorted(expected_split.keys() | actual_split.keys()):
            expected_value = expected_split.get(split_key, SupportDelta())
            actual_value = actual_split.get(split_key, SupportDelta())
            if expected_value != actual_value:
                where = _name(FigureKey(split_key.edition, split_key.code))
                lines.append(
                    f"{where}: {what} {split_key.bucket} "
                    f"aggregator={actual_value.events} events/{actual_value.residents} residents"
                    f"/outcomes {actual_value.as_tuple()[2:]} "
                    f"recount={expected_value.events} events/{expected_value.residents} residents"
                    f"/outcomes {expected_value.as_tuple()[2:]}"
                )
    return lines


@dataclass(frozen=True)
class CheckResult:
    differences: list[str]
    units: int
    teams: int
    members: int
    support_events: int


async def _read[T](
    settings: Settings, service: ServiceName, read: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """`read` on a connection to `service`'s own database (each may be a server of its own)."""
    async with (
        engine_scope(settings.database_url_for(service), pool_size=1) as engine,
        engine.connect() as conn,
    ):
        return await read(conn)


async def run_check(settings: Settings, editions: Iterable[Edition] = EDITIONS) -> CheckResult:
    """Recount and compare once."""
    editions = list(editions)
    recounted = Figures()
    registry = await _read(settings, "registry", partial(recount_registry, editions=editions))
    add_registry(registry, recounted)
    # Every edition's support: a legacy team's also counts where it is placed in 2025.
    support = await _read(settings, "activity", partial(recount_support, editions=EDITIONS))
    add_support(support, recounted, registry.placements, editions)
    aggregated = await _read(settings, "aggregator", partial(stored_figures, editions=editions))
    national = [recounted.counters.get(FigureKey(e, "")) or FigureDelta() for e in editions]
    conserved = conservation(registry, aggregated) if set(editions) == set(EDITIONS) else []
    return CheckResult(
        differences=differences(recounted, aggregated) + conserved,
        units=len(recounted.units),
        teams=sum(n.teams for n in national),
        members=sum(n.members for n in national),
        support_events=sum(n.support_events for n in national),
    )


async def rebuild_differences(settings: Settings) -> list[str]:
    """The units whose figures a rebuild from the streams would change (none: they agree)."""
    redis, layout = await open_streams(settings)
    try:
        async with engine_scope(settings.database_url_for("aggregator"), pool_size=1) as engine:
            report = await rebuild(engine, redis, layout, swap=False)
    except RebuildRefusedError as refused:
        return [f"rebuild vs live: no rebuild could be compared: {refused}"]
    finally:
        await redis.aclose()
    return [
        f"rebuild vs live: the rebuilt figures of {_name(key)} differ from the live ones"
        for key in report.changed
    ]


async def check_until(settings: Settings, editions: list[Edition], wait: float) -> CheckResult:
    """Check, and keep checking while there are differences, up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        result = await run_check(settings, editions)
        if not result.differences or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(0.5)


@app.command()
def check(
    edition: Annotated[
        list[str] | None, typer.Option(help="edition to check (repeatable; default: both)")
    ] = None,
    wait: Annotated[
        float, typer.Option(help="seconds to keep re-checking while figures still differ")
    ] = 0.0,
    limit: Annotated[int, typer.Option(help="differences to print at most")] = 200,
    compare_rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="also rebuild the figures from the streams (not swapped in) and compare "
            "them with the live ones",
        ),
    ] = False,
) -> None:
    """Recount the figures from the producers' data; compare with the aggregator's.

    Teams, members, coverage and support are recounted by the registry and activity from
    their own tables and compared unit by unit; exits 1 listing the differences.
    """
    chosen = edition or list(EDITIONS)
    unknown = [e for e in chosen if e not in EDITIONS]
    if unknown:
        raise typer.BadParameter(f"unknown edition(s) {unknown}; use {list(EDITIONS)}")
    editions = [e for e in EDITIONS if e in chosen]
    settings = Settings()
    result = asyncio.run(check_until(settings, editions, wait))
    if compare_rebuild:
        result.differences.extend(asyncio.run(rebuild_differences(settings)))
    scope = (
        f"{result.units} units, {result.teams} active teams, {result.members} members, "
        f"{result.support_events} support events ({', '.join(chosen)})"
    )
    if not result.differences:
        typer.echo(f"check: no differences; {scope}")
        return
    for line in result.differences[:limit]:
        typer.echo(line)
    more = len(result.differences) - limit
    if more > 0:
        typer.echo(f"... and {more} more")
    typer.echo(f"check: {len(result.differences)} differences; {scope}", err=True)
    raise typer.Exit(1)
