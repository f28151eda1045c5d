"""The registry's ports, one suite for both implementations: SQL on PostgreSQL and the fake.

The use case unit tests trust tests/unit/registry/fakes.py to behave as the SQL adapters
do; this suite holds it to that. Every case runs the same calls, one transaction per
block, against each implementation and asserts the same answers and refusals.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date

import pytest
import sqlalchemy.exc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry import domain
from services.registry.adapters.repositories import unit_of_work
from services.registry.adapters.tables import outbox
from services.registry.ports import UnitOfWork
from services.registry.use_cases import team_event, unit_registered
from shared.runtime.db import make_sessionmaker
from tests.factories import LEGACY_COMMUNE, LEGACY_DISTRICT, LEGACY_PROVINCE, make_member, make_team
from tests.factories import make_unit as unit_at
from tests.unit.registry import fakes

Transaction = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
# What each implementation raises for a row its database refuses (duplicate, orphan).
REFUSED = (sqlalchemy.exc.IntegrityError, fakes.IntegrityError)
VILLAGE = f"{LEGACY_COMMUNE}-001"


class Store:
    """One implementation: a way to open a transaction, and the event types it has queued."""

    def __init__(self, transaction: Transaction, queued: Callable[[], AsyncIterator[str]]):
        self.transaction = transaction
        self._queued = queued

    async def queued_types(self) -> list[str]:
        return [event_type async for event_type in self._queued()]


@pytest.fixture(params=["sql", "fake"])
async def store(request: pytest.FixtureRequest, engine: AsyncEngine) -> Store:
    if request.param == "fake":
        fake = fakes.FakeUnitOfWork()

        @asynccontextmanager
        async def fake_transaction() -> AsyncIterator[UnitOfWork]:
            yield fake

        async def fake_queued() -> AsyncIterator[str]:
            for event in fake.published:
                yield event.type

        return Store(fake_transaction, fake_queued)

    sessionmaker = make_sessionmaker(engine)

    def sql_transaction() -> AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(sessionmaker)

    async def sql_queued() -> AsyncIterator[str]:
        async with engine.connect() as conn:
            for event_type in await conn.scalars(select(outbox.c.event_type).order_by(outbox.c.id)):
                yield event_type

    return Store(sql_transaction, sql_queued)


async def with_map(store: Store) -> domain.Unit:
    """The legacy province, district and commune registered; returns the commune."""
    async with store.transaction() as uow:
        await uow.units.add_new(fakes.legacy_map())
    async with store.transaction() as uow:
        commune = await uow.units.get("legacy", LEGACY_COMMUNE)
    assert commune is not None
    return commune


def village() -> domain.Unit:
    return unit_at(
        VILLAGE,
        level="village",
        parent_code=LEGACY_COMMUNE,
        path=(LEGACY_PROVINCE, LEGACY_DISTRICT, LEGACY_COMMUNE, VILLAGE),
    )


async def test_units_are_added_once_and_read_back_as_stored(store: Store) -> None:
    province, district, commune = fakes.legacy_map()
    async with store.transaction() as uow:
        assert await uow.units.add_new([province, district]) == [province, district]
    async with store.transaction() as uow:
        # Already registered ones are skipped, new ones kept in batch order.
        assert await uow.units.add_new([province, district, commune]) == [commune]
        await uow.units.add(village())

    async with store.transaction() as uow:
        assert await uow.units.get("legacy", VILLAGE) == village()
        assert await uow.units.get("2025", LEGACY_COMMUNE) is None
        assert await uow.units.children("legacy", LEGACY_DISTRICT) == [commune]
        assert await uow.units.children("legacy", LEGACY_COMMUNE, "village") == [village()]
        assert await uow.units.children("legacy", LEGACY_COMMUNE, "commune") == []
        assert await uow.units.at_level("legacy", "province") == [province]
        assert await uow.units.child_codes("legacy", LEGACY_COMMUNE) == [VILLAGE]


@pytest.mark.parametrize(
    "refused",
    [
        unit_at(LEGACY_COMMUNE),  # registered already
        unit_at("04999", parent_code="999"),  # its parent is not registered
    ],
    ids=["duplicate", "orphan"],
)
async def test_a_unit_the_database_refuses(store: Store, refused: domain.Unit) -> None:
    await with_map(store)
    with pytest.raises(REFUSED):
        async with store.transaction() as uow:
            await uow.units.add(refused)


TODAY = date(2026, 1, 1)


async def test_a_team_is_saved_change_by_change_and_read_back_whole(store: Store) -> None:
    commune = await with_map(store)
    team = make_team(unit=commune, members=2)
    async with store.transaction() as uow:
        await uow.teams.add(team)
    async with store.transaction() as uow:
        assert await uow.teams.get(team.team_id, lock=True) == team
        assert await uow.teams.active_team_id("legacy", LEGACY_COMMUNE) == team.team_id
        joined = domain.add_member(team, make_member("deputy"), today=TODAY)
        await uow.teams.save(team, joined)
    async with store.transaction() as uow:
        left = domain.remove_member(joined, team.members[0].member_id, today=TODAY)
        await uow.teams.save(joined, left)
        dissolved = domain.dissolve(left, today=TODAY)
        await uow.teams.save(left, dissolved)

    async with store.transaction() as uow:
        stored = await uow.teams.get(team.team_id)
        assert stored == dissolved
        assert stored is not None
        assert stored.members == (team.members[1], joined.members[2])
        # The removed member stays, dated: the team's history is in its state.
        assert stored.former_members == (dataclasses.replace(team.members[0], left_on=TODAY),)
        assert await uow.teams.active_team_id("legacy", LEGACY_COMMUNE) is None
        assert await uow.teams.get(uuid.uuid4()) is None


async def test_teams_of_a_unit_newest_first(store: Store) -> None:
    commune = await with_map(store)
    first = make_team(unit=commune)
    async with store.transaction() as uow:
        await uow.teams.add(first)
        await uow.teams.save(first, domain.dissolve(first, today=TODAY))
    second = make_team(unit=commune)
    async with store.transaction() as uow:
        await uow.teams.add(second)

    async with store.transaction() as uow:
        teams = await uow.teams.of_unit("legacy", LEGACY_COMMUNE)
        assert [(t.team_id, t.status) for t in teams] == [
            (second.team_id, "active"),
            (first.team_id, "dissolved"),
        ]
        assert await uow.teams.of_unit("legacy", LEGACY_DISTRICT) == []


async def test_a_second_active_team_on_a_unit_is_refused(store: Store) -> None:
    commune = await with_map(store)
    async with store.transaction() as uow:
        await uow.teams.add(make_team(unit=commune))
    with pytest.raises(REFUSED):
        async with store.transaction() as uow:
            await uow.teams.add(make_team(unit=commune))


async def test_a_save_over_a_version_no_longer_stored_is_refused(store: Store) -> None:
    commune = await with_map(store)
    team = make_team(unit=commune)
    async with store.transaction() as uow:
        await uow.teams.add(team)
        await uow.teams.save(team, domain.dissolve(team, today=TODAY))
    with pytest.raises(RuntimeError, match="version mismatch"):
        async with store.transaction() as uow:
            await uow.teams.save(team, domain.dissolve(team, today=TODAY))


async def test_published_events_are_queued_in_order(store: Store) -> None:
    commune = await with_map(store)
    team = make_team(unit=commune)
    async with store.transaction() as uow:
        await uow.publish([unit_registered(commune), team_event(team, None)])
    async with store.transaction() as uow:
        await uow.publish([team_event(domain.dissolve(team, today=TODAY), team)])

    assert await store.queued_types() == ["unit.registered", "team.created", "team.dissolved"]
