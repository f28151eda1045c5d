"""Activity state in PostgreSQL: support events and the team directory, inside one transaction.

`unit_of_work` opens the transaction a use case runs in; its repositories read and write
through that transaction and `publish` queues events in the same one (the outbox).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Column, Row, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.activity.adapters.tables import outbox, support_events, team_directory
from services.activity.domain import SupportRecord, TeamEntry
from shared.contracts.events.activity import OUTCOME_KINDS, Outcomes, SupportRecorded
from shared.messaging.outbox import add_to_outbox


def _record(row: Row[Any]) -> SupportRecord:
    return SupportRecord(
        event_id=row.event_id,
        team_id=row.team_id,
        edition=row.edition,
        unit_code=row.unit_code,
        unit_path=tuple(row.unit_path),
        occurred_on=row.occurred_on,
        category=row.category,
        residents_helped=row.residents_helped,
        outcomes=Outcomes(**{kind: row._mapping[kind] for kind in OUTCOME_KINDS}),
    )


def _entry(row: Row[Any]) -> TeamEntry:
    return TeamEntry(
        team_id=row.team_id,
        edition=row.edition,
        unit_code=row.unit_code,
        unit_level=row.unit_level,
        unit_path=tuple(row.unit_path),
        status=row.status,
        version=row.version,
    )


async def _by_id[T](
    session: AsyncSession,
    key: Column[uuid.UUID],
    ids: Collection[uuid.UUID],
    build: Callable[[Row[Any]], T],
) -> dict[uuid.UUID, T]:
    """The rows of `key`'s table whose key is among `ids`, built and keyed by id (one query)."""
    if not ids:
        return {}
    rows = await session.execute(select(key.table).where(key.in_(list(ids))))
    return {row._mapping[key]: build(row) for row in rows}


class SupportEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get_many(self, event_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, SupportRecord]:
        return await _by_id(self._session, support_events.c.event_id, event_ids, _record)

    async def add_new(self, records: Sequence[SupportRecord]) -> set[uuid.UUID]:
        if not records:
            return set()
        t = support_events
        # One statement for the whole batch (SQLAlchemy renders the rows as one multi-row
        # INSERT, compiled once and cached: `.values([...])` would compile on every call);
        # an id stored meanwhile by another request is skipped (and reported by the use
        # case), never overwritten.
        statement = (
            insert(t).on_conflict_do_nothing(index_elements=[t.c.event_id]).returning(t.c.event_id)
        )
        rows = [
            {
                "event_id": r.event_id,
                "team_id": r.team_id,
                "edition": r.edition,
                "unit_code": r.unit_code,
                "unit_path": list(r.unit_path),
                "occurred_on": r.occurred_on,
                "category": r.category,
                "residents_helped": r.residents_helped,
                **dict(zip(OUTCOME_KINDS, r.outcomes.counts(), strict=True)),
            }
            for r in records
        ]
        return set((await self._session.scalars(statement, rows)).all())

    async def count(self) -> int:
        value = await self._session.scalar(select(func.count()).select_from(support_events))
        return int(value or 0)


class TeamDirectoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get_many(self, team_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TeamEntry]:
        return await _by_id(self._session, team_directory.c.team_id, team_ids, _entry)

    async def keep_newest(self, entries: Sequence[TeamEntry]) -> int:
        if not entries:
            return 0
        t = team_directory
        statement = insert(t).values(
            [
                {
                    "team_id": e.team_id,
                    "edition": e.edition,
                    "unit_code": e.unit_code,
                    "unit_level": e.unit_level,
                    "unit_path": list(e.unit_path),
                    "status": e.status,
                    "version": e.version,
                }
                for e in entries
            ]
        )
        # Version-guarded: a redelivered or late older state leaves the newer row alone.
        statement = statement.on_conflict_do_update(
            index_elements=[t.c.team_id],
            set_={
                "edition": statement.excluded.edition,
                "unit_code": statement.excluded.unit_code,
                "unit_level": statement.excluded.unit_level,
                "unit_path": statement.excluded.unit_path,
                "status": statement.excluded.status,
                "version": statement.excluded.version,
                "updated_at": func.now(),
            },
            where=t.c.version < statement.excluded.version,
        )
        result = await self._session.execute(statement)
        changed: int = result.rowcount  # type: ignore[attr-defined]
        return changed


class SqlUnitOfWork:
    """The repositories of one transaction, and the outbox of the same transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.support = SupportEventRepository(session)
        self.directory = TeamDirectoryRepository(session)

    async def publish(self, events: Sequence[SupportRecorded]) -> None:
        await add_to_outbox(self.session, outbox, events)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[SqlUnitOfWork]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    async with sessionmaker() as session, session.begin():
        yield SqlUnitOfWork(session)
