"""The projections in PostgreSQL: one batch's writes inside one transaction, in key order.

Every write sorts its rows by primary key and sums deltas per key first (a key may not
appear twice in one INSERT ... ON CONFLICT), and the tables are always written in the
same order (processed events, units, team states, figures, history, support, team
support, team months, targets). Two aggregator processes whose batches share keys therefore queue on
the first shared row instead of deadlocking, and the second one reads what the first
committed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import date
from typing import Any, Final

import orjson
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    func,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import sqltypes

from services.aggregator.adapters.tables import (
    figures,
    figures_by_day,
    processed_events,
    support_by_category,
    support_by_day,
    support_by_month,
    targets,
    team_months,
    team_states,
    team_support,
    units,
)
from services.aggregator.domain import (
    COUNTERS,
    HISTORY_COUNTERS,
    SUPPORT_COUNTERS,
    DayKey,
    FigureDelta,
    FigureKey,
    MemberStep,
    Spot,
    SupportDayKey,
    SupportDelta,
    SupportKey,
    TargetRecord,
    TeamRecord,
    TeamSupportKey,
    UnitRecord,
)
from shared.contracts.units import UnitPath

# Live batches hold it shared; `cdtt aggregator rebuild` holds it exclusively while it
# catches up and swaps its tables in, so no batch commits to tables being swapped out.
SWAP_LOCK_KEY: Final = 0x6364_7474_0A66
LIVE_CHANNEL: Final = "aggregator_figures"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
_NOTIFY_LIMIT: Final = 7_000


class SqlProjectionStore:
    """The `ProjectionStore` port (ports.py) over one open transaction (a `begin()` block)."""

    def __init__(self, conn: AsyncConnection, *, live_channel: str | None = LIVE_CHANNEL) -> None:
        self._conn = conn
        self._live_channel = live_channel

    async def claim_events(self, stream: str, event_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        if not event_ids:
            return set()
        rows = [(event_id, stream) for event_id in sorted(event_ids)]
        stmt = (
            insert(processed_events)
            .from_select(
                ["event_id", "stream"], _rows_of(processed_events, ["event_id", "stream"], rows)
            )
            .on_conflict_do_nothing(index_elements=[processed_events.c.event_id])
            .returning(processed_events.c.event_id)
        )
        result = await self._conn.execute(stmt)
        return set(result.scalars().all())

    async def add_units(self, records: Sequence[UnitRecord]) -> list[UnitRecord]:
        by_key = {u.key: u for u in reversed(records)}  # the first registration in the batch wins
        if not by_key:
            return []
        columns = [
            "edition",
            "code",
            "name",
            "level",
            "parent_code",
            "path",
            "lat",
            "lon",
            "came_from",
        ]
        rows = [
            (
                u.edition,
                u.code,
                u.name,
                u.level,
                u.parent_code,
                u.path,
                u.lat,
                u.lon,
                orjson.dumps([{"code": c, "partly": p} for c, p in u.came_from]).decode(),
            )
            for _, u in sorted(by_key.items())
        ]
        stmt = (
            insert(units)
            .from_select(columns, _rows_of(units, columns, rows))
            .on_conflict_do_nothing(index_elements=[units.c.edition, units.c.code])
            .returning(units.c.edition, units.c.code)
        )
        result = await self._conn.execute(stmt)
        added = {FigureKey(r.edition, r.code) for r in result}
        return [u for key, u in sorted(by_key.items()) if key in added]

    async def unit_paths(self, keys: Collection[FigureKey]) -> dict[FigureKey, UnitPath]:
        if not keys:
            return {}
        result = await self._conn.execute(
            select(units.c.edition, units.c.code, units.c.path).where(
                tuple_(units.c.edition, units.c.code).in_([(k.edition, k.code) for k in keys])
            )
        )
        return {FigureKey(r.edition, r.code): tuple(r.path) for r in result}

    async def lock_teams(self, candidates: Sequence[TeamRecord]) -> dict[uuid.UUID, TeamRecord]:
        # Insert-or-lock in one statement: a team seen for the first time gets a version-0
        # row that contributes nothing, so a concurrent batch with the same team waits here
        # and then reads what this one committed instead of also starting from nothing.
        rows = [
            (
                t.team_id,
                t.edition,
                0,
                "dissolved",
                t.unit_path,
                t.unit_level,
                0,
                0,
                "[]",
                None,
                None,
                "[]",
            )
            for t in sorted(candidates, key=lambda t: t.team_id)
        ]
        stmt = (
            insert(team_states)
            .from_select(_TEAM_COLUMNS, _rows_of(team_states, _TEAM_COLUMNS, rows))
            .on_conflict_do_update(
                index_elements=[team_states.c.team_id],
                set_={"version": team_states.c.version},
            )
            .returning(*team_states.c)
        )
        result = await self._conn.execute(stmt)
        return {r.team_id: _team_record(r) for r in result if r.version > 0}

    async def save_teams(self, teams: Sequence[TeamRecord]) -> None:
        rows = [
            (
                t.team_id,
                t.edition,
                t.version,
                t.status,
                t.unit_path,
                t.unit_level,
                t.member_count,
                t.trained_count,
                _placements_json(t.placements),
                t.established_on,
                t.dissolved_on,
                _steps_json(t.member_steps),
            )
            for t in sorted(teams, key=lambda t: t.team_id)
        ]
        stmt = insert(team_states).from_select(
            _TEAM_COLUMNS, _rows_of(team_states, _TEAM_COLUMNS, rows)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[team_states.c.team_id],
            set_={name: stmt.excluded[name] for name in _TEAM_COLUMNS[1:]},
        )
        await self._conn.execute(stmt)

    async def add_figures(
        self, deltas: Mapping[FigureKey, FigureDelta], report: Collection[FigureKey]
    ) -> dict[FigureKey, int]:
        if deltas:
            columns = ["edition", "code", *COUNTERS]
            rows = [(*key, *delta.as_tuple()) for key, delta in sorted(deltas.items())]
            stmt = insert(figures).from_select(columns, _rows_of(figures, columns, rows))
            stmt = stmt.on_conflict_do_update(
                index_elements=[figures.c.edition, figures.c.code],
                set_={name: figures.c[name] + stmt.excluded[name] for name in COUNTERS},
            )
            await self._conn.execute(stmt)
        if not report:
            return {}
        # These rows are locked by the upsert above: the values read are this batch's own.
        result = await self._conn.execute(
            select(figures.c.edition, figures.c.code, figures.c.direct_teams).where(
                tuple_(figures.c.edition, figures.c.code).in_([(k.edition, k.code) for k in report])
            )
        )
        return {FigureKey(r.edition, r.code): r.direct_teams for r in result}

    async def direct_history(self, keys: Collection[FigureKey]) -> dict[FigureKey, dict[date, int]]:
        if not keys:
            return {}
        result = await self._conn.execute(
            select(
                figures_by_day.c.edition,
                figures_by_day.c.code,
                figures_by_day.c.day,
                figures_by_day.c.direct_teams,
            ).where(
                tuple_(figures_by_day.c.edition, figures_by_day.c.code).in_(
                    [(k.edition, k.code) for k in keys]
                ),
                figures_by_day.c.direct_teams != 0,
            )
        )
        history: dict[FigureKey, dict[date, int]] = {}
        for r in result:
            history.setdefault(FigureKey(r.edition, r.code), {})[r.day] = r.direct_teams
        return history

    async def add_history(self, deltas: Mapping[DayKey, FigureDelta]) -> None:
        if not deltas:
            return
        columns = ["edition", "code", "day", *HISTORY_COUNTERS]
        rows = [
            (*key, *(getattr(delta, name) for name in HISTORY_COUNTERS))
            for key, delta in sorted(deltas.items())
        ]
        stmt = insert(figures_by_day).from_select(columns, _rows_of(figures_by_day, columns, rows))
        stmt = stmt.on_conflict_do_update(
            index_elements=[figures_by_day.c.edition, figures_by_day.c.code, figures_by_day.c.day],
            set_={name: figures_by_day.c[name] + stmt.excluded[name] for name in HISTORY_COUNTERS},
        )
        await self._conn.execute(stmt)

    async def add_support(
        self,
        by_category: Mapping[SupportKey, SupportDelta],
        by_month: Mapping[SupportKey, SupportDelta],
        by_day: Mapping[SupportDayKey, SupportDelta],
    ) -> None:
        splits: tuple[tuple[Table, tuple[str, ...], Mapping[Any, SupportDelta]], ...] = (
            (support_by_category, ("category",), by_category),
            (support_by_month, ("month",), by_month),
            (support_by_day, ("day", "category"), by_day),
        )
        for table, buckets, deltas in splits:
            if not deltas:
                continue
            columns = ["edition", "code", *buckets, *SUPPORT_COUNTERS]
            rows = [(*key, *delta.as_tuple()) for key, delta in sorted(deltas.items())]
            stmt = insert(table).from_select(columns, _rows_of(table, columns, rows))
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.edition, table.c.code, *(table.c[b] for b in buckets)],
                set_={name: table.c[name] + stmt.excluded[name] for name in SUPPORT_COUNTERS},
            )
            await self._conn.execute(stmt)

    async def team_support(
        self, team_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, dict[TeamSupportKey, SupportDelta]]:
        if not team_ids:
            return {}
        result = await self._conn.execute(
            select(team_support).where(team_support.c.team_id.in_(sorted(team_ids)))
        )
        stored: dict[uuid.UUID, dict[TeamSupportKey, SupportDelta]] = {}
        for r in result:
            key = TeamSupportKey(r.team_id, r.day, r.category)
            counted = SupportDelta(*(r._mapping[name] for name in SUPPORT_COUNTERS))
            stored.setdefault(r.team_id, {})[key] = counted
        return stored

    async def add_team_support(self, deltas: Mapping[TeamSupportKey, SupportDelta]) -> None:
        if not deltas:
            return
        columns = ["team_id", "day", "category", *SUPPORT_COUNTERS]
        rows = [(*key, *delta.as_tuple()) for key, delta in sorted(deltas.items())]
        stmt = insert(team_support).from_select(columns, _rows_of(team_support, columns, rows))
        stmt = stmt.on_conflict_do_update(
            index_elements=[team_support.c.team_id, team_support.c.day, team_support.c.category],
            set_={name: team_support.c[name] + stmt.excluded[name] for name in SUPPORT_COUNTERS},
        )
        await self._conn.execute(stmt)

    async def add_team_months(self, pairs: Collection[tuple[uuid.UUID, str]]) -> None:
        if not pairs:
            return
        stmt = (
            insert(team_months)
            .from_select(
                ["team_id", "month"], _rows_of(team_months, ["team_id", "month"], sorted(pairs))
            )
            .on_conflict_do_nothing(index_elements=[team_months.c.team_id, team_months.c.month])
        )
        await self._conn.execute(stmt)

    async def save_targets(self, records: Sequence[TargetRecord]) -> None:
        rows = [
            {
                "edition": t.edition,
                "code": t.code,
                "version": t.version,
                "due": t.due,
                "covered_pct": t.covered_pct,
                "members_trained_pct": t.members_trained_pct,
                "outcomes": t.outcomes,
            }
            for t in sorted(records, key=lambda t: t.key)
        ]
        stmt = insert(targets).values(rows)
        await self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[targets.c.edition, targets.c.code],
                set_={name: stmt.excluded[name] for name in _TARGET_COLUMNS},
                # Version-guarded: an older target arriving late changes nothing.
                where=targets.c.version < stmt.excluded.version,
            )
        )

    async def announce(self, changed: Collection[FigureKey]) -> None:
        """NOTIFY the changed keys; PostgreSQL delivers it at commit, and never on rollback."""
        if self._live_channel is None or not changed:
            return
        for payload in notify_payloads(changed):
            await self._conn.execute(select(func.pg_notify(self._live_channel, payload)))


_TARGET_COLUMNS = ("version", "due", "covered_pct", "members_trained_pct", "outcomes")


def notify_payloads(changed: Collection[FigureKey]) -> list[str]:
    """`{"edition": ..., "codes": [...]}` messages, each under PostgreSQL's size limit."""
    by_edition: dict[str, list[str]] = {}
    for key in sorted(changed):
        by_edition.setdefault(key.edition, []).append(key.code)
    payloads = []
    for edition, codes in by_edition.items():
        chunk: list[str] = []
        size = 0
        for code in codes:
            if chunk and size + len(code) + 4 > _NOTIFY_LIMIT:
                payloads.append(orjson.dumps({"edition": edition, "codes": chunk}).decode())
                chunk, size = [], 0
            chunk.append(code)
            size += len(code.encode()) + 4
        payloads.append(orjson.dumps({"edition": edition, "codes": chunk}).decode())
    return payloads


def _rows_of(table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> Select[Any]:
    """`SELECT unnest($1::type[]) AS c1, unnest($2::type[]) AS c2, ...`: the rows, in order.

    One array per column instead of one bound row per row: a batch's thousands of rows
    are one statement whose text never changes (prepared once), and PostgreSQL takes
    them in the order given, which is the key order the module docstring relies on.
    """
    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return select(
        *(_unnested(table, name, column) for name, column in zip(columns, values, strict=True))
    )


def _unnested(table: Table, name: str, values: Sequence[Any]) -> ColumnElement[Any]:
    column_type = table.c[name].type
    if isinstance(column_type, sqltypes.ARRAY):
        # unnest() flattens an array of arrays: send each one as an array literal, cast back.
        literals = [_array_literal(value) for value in values]
        return cast(
            func.unnest(bindparam(f"rows_{name}", literals, type_=ARRAY(Text))), column_type
        ).label(name)
    return func.unnest(bindparam(f"rows_{name}", list(values), type_=ARRAY(column_type))).label(
        name
    )


def _array_literal(items: Sequence[str]) -> str:
    """`{"15","136"}`: PostgreSQL's text form of an array, every element quoted."""
    quoted = (item.replace("\\", "\\\\").replace('"', '\\"') for item in items)
    return "{" + ",".join(f'"{item}"' for item in quoted) + "}"


_TEAM_COLUMNS = [
    "team_id",
    "edition",
    "version",
    "status",
    "unit_path",
    "unit_level",
    "member_count",
    "trained_count",
    "placements",
    "established_on",
    "dissolved_on",
    "member_steps",
]


def _steps_json(steps: Sequence[MemberStep]) -> str:
    return orjson.dumps([[s.day.isoformat(), s.members, s.trained] for s in steps]).decode()


def _steps(text: str) -> tuple[MemberStep, ...]:
    return tuple(
        MemberStep(date.fromisoformat(day), members, trained)
        for day, members, trained in orjson.loads(text)
    )


def _placements_json(spots: Sequence[Spot]) -> str:
    return orjson.dumps(
        [
            {"edition": s.edition, "path": s.path, "level": s.level, "placed": s.placed}
            for s in spots
        ]
    ).decode()


def _spots(text: str) -> tuple[Spot, ...]:
    return tuple(
        Spot(s["edition"], tuple(s["path"]), s["level"], s["placed"]) for s in orjson.loads(text)
    )


def _team_record(row: Row[Any]) -> TeamRecord:
    return TeamRecord(
        team_id=row.team_id,
        edition=row.edition,
        version=row.version,
        status=row.status,
        unit_path=tuple(row.unit_path),
        unit_level=row.unit_level,
        member_count=row.member_count,
        trained_count=row.trained_count,
        placements=_spots(row.placements),
        established_on=row.established_on,
        dissolved_on=row.dissolved_on,
        member_steps=_steps(row.member_steps),
    )


@asynccontextmanager
async def projection_store(engine: AsyncEngine) -> AsyncIterator[SqlProjectionStore]:
    """A live batch's transaction: commits when the block ends, rolls back if it raises."""
    async with engine.begin() as conn:
        await conn.execute(select(func.pg_advisory_xact_lock_shared(SWAP_LOCK_KEY)))
        yield SqlProjectionStore(conn)
