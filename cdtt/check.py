"""`cdtt check`: recount the figures from the producers' own tables, compare with the aggregator's.

The recount reads the registry's units, active teams and their members, and the
activity's support events, each from its service's own database (they may be separate
servers), rolls them up the unit paths by DESIGN.md's definitions, and compares every
counter of every unit and nation, and every support split, with the aggregator's
projections. Run it once the system is quiet (lag 0); `--wait` retries until the
figures agree or the time is up, for a system that is still settling.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.aggregator.domain import (
    COUNTERS,
    FigureDelta,
    FigureKey,
    SupportDelta,
    SupportKey,
    ancestor_keys,
    scope_keys,
)
from shared.contracts.units import EDITIONS, Edition
from shared.runtime.db import engine_scope
from shared.runtime.settings import ServiceName, Settings

app = typer.Typer(add_completion=False)


@dataclass
class Figures:
    """Every figure of every unit and nation, zero rows left out."""

    counters: dict[FigureKey, FigureDelta] = field(default_factory=dict)
    by_category: dict[SupportKey, SupportDelta] = field(default_factory=dict)
    by_month: dict[SupportKey, SupportDelta] = field(default_factory=dict)
    units: set[FigureKey] = field(default_factory=set)

    def add(self, key: FigureKey, **counts: int) -> None:
        row = self.counters.setdefault(key, FigureDelta())
        for name, value in counts.items():
            setattr(row, name, getattr(row, name) + value)


def _split(
    target: dict[SupportKey, SupportDelta], key: SupportKey, events: int, residents: int
) -> None:
    target.setdefault(key, SupportDelta()).add(SupportDelta(events, residents))


async def _rows(conn: AsyncConnection, sql: str, editions: Iterable[Edition]) -> list[Any]:
    result = await conn.execute(text(sql), {"editions": list(editions)})
    return list(result)


async def recount_registry(
    conn: AsyncConnection, editions: Iterable[Edition], into: Figures
) -> None:
    """Units (the denominators) and active teams with their members, from the registry."""
    units = await _rows(
        conn,
        "SELECT edition, code, level, path FROM registry.units WHERE edition = ANY(:editions)",
        editions,
    )
    for unit in units:
        key = FigureKey(unit.edition, unit.code)
        into.units.add(key)
        into.counters.setdefault(key, FigureDelta())
        for ancestor in ancestor_keys(unit.edition, tuple(unit.path)):
            into.add(ancestor, **{f"total_{unit.level}": 1})
    teams = await _rows(
        conn,
        """
        SELECT t.edition, u.level, u.path, count(m.member_id) AS members
        FROM registry.teams t
        JOIN registry.units u ON u.edition = t.edition AND u.code = t.unit_code
        LEFT JOIN registry.members m ON m.team_id = t.team_id
        WHERE t.status = 'active' AND t.edition = ANY(:editions)
        GROUP BY t.team_id, t.edition, u.level, u.path
        """,
        editions,
    )
    covered: set[tuple[Edition, tuple[str, ...], str]] = set()
    for team in teams:
        path = tuple(team.path)
        for key in scope_keys(team.edition, path):
            into.add(key, teams=1, members=team.members)
        into.add(FigureKey(team.edition, path[-1]), direct_teams=1)
        covered.add((team.edition, path, team.level))
    for edition, path, level in covered:
        for key in ancestor_keys(edition, path):
            into.add(key, **{f"covered_{level}": 1})


async def recount_activity(
    conn: AsyncConnection, editions: Iterable[Edition], into: Figures
) -> None:
    """Support events, by the unit path each was recorded under, from the activity service."""
    rows = await _rows(
        conn,
        """
        SELECT edition, unit_path, category, to_char(occurred_on, 'YYYY-MM') AS month,
               count(*) AS events, sum(residents_helped) AS residents
        FROM activity.support_events
        WHERE edition = ANY(:editions)
        GROUP BY edition, unit_path, category, month
        """,
        editions,
    )
    for row in rows:
        for key in scope_keys(row.edition, tuple(row.unit_path)):
            into.add(key, support_events=row.events, support_residents=row.residents)
            _split(
                into.by_category,
                SupportKey(key.edition, key.code, row.category),
                row.events,
                row.residents,
            )
            _split(
                into.by_month,
                SupportKey(key.edition, key.code, row.month),
                row.events,
                row.residents,
            )


async def read_aggregator(
    conn: AsyncConnection, editions: Iterable[Edition], into: Figures
) -> None:
    """The aggregator's projections as they are served."""
    columns = ", ".join(COUNTERS)
    rows = await _rows(
        conn,
        f"SELECT edition, code, {columns} FROM aggregator.figures WHERE edition = ANY(:editions)",  # noqa: S608 - column names are ours
        editions,
    )
    for row in rows:
        into.counters[FigureKey(row.edition, row.code)] = FigureDelta(
            **{name: row._mapping[name] for name in COUNTERS}
        )
    units = await _rows(
        conn, "SELECT edition, code FROM aggregator.units WHERE edition = ANY(:editions)", editions
    )
    into.units = {FigureKey(u.edition, u.code) for u in units}
    for table, bucket, target in (
        ("support_by_category", "category", into.by_category),
        ("support_by_month", "month", into.by_month),
    ):
        splits = await _rows(
            conn,
            f"SELECT edition, code, {bucket} AS bucket, events, residents "  # noqa: S608 - ours
            f"FROM aggregator.{table} WHERE edition = ANY(:editions)",
            editions,
        )
        for split in splits:
            _split(
                target,
                SupportKey(split.edition, split.code, split.bucket),
                split.events,
                split.residents,
            )


Reader = Callable[[AsyncConnection, Iterable[Edition], Figures], Awaitable[None]]


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
                    f"aggregator={actual_value.events} events/{actual_value.residents} residents "
                    f"recount={expected_value.events} events/{expected_value.residents} residents"
                )
    return lines


@dataclass(frozen=True)
class CheckResult:
    differences: list[str]
    units: int
    teams: int
    members: int
    support_events: int


async def run_check(settings: Settings, editions: Iterable[Edition] = EDITIONS) -> CheckResult:
    """Recount and compare once."""
    editions = list(editions)
    recounted, aggregated = Figures(), Figures()
    readers: tuple[tuple[ServiceName, Reader, Figures], ...] = (
        ("registry", recount_registry, recounted),
        ("activity", recount_activity, recounted),
        ("aggregator", read_aggregator, aggregated),
    )
    for service, read, into in readers:
        async with (
            engine_scope(settings.database_url_for(service), pool_size=1) as engine,
            engine.connect() as conn,
        ):
            await read(conn, editions, into)
    national = [recounted.counters.get(FigureKey(e, "")) or FigureDelta() for e in editions]
    return CheckResult(
        differences=differences(recounted, aggregated),
        units=len(recounted.units),
        teams=sum(n.teams for n in national),
        members=sum(n.members for n in national),
        support_events=sum(n.support_events for n in national),
    )


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
) -> None:
    """Recount the figures from the producers' tables; compare with the aggregator's.

    Teams, members, coverage and support are recounted from the registry's and the
    activity's own tables and compared unit by unit; exits 1 listing the differences.
    """
    chosen = edition or list(EDITIONS)
    unknown = [e for e in chosen if e not in EDITIONS]
    if unknown:
        raise typer.BadParameter(f"unknown edition(s) {unknown}; use {list(EDITIONS)}")
    editions = [e for e in EDITIONS if e in chosen]
    result = asyncio.run(check_until(Settings(), editions, wait))
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
