"""Placement use cases on in-memory fakes: where each kind of legacy team lands in 2025, the
village carried over once, a waiting team placed and moved, and the refusals."""

from __future__ import annotations

from datetime import date

import pytest

from services.registry import domain, use_cases
from services.registry.adapters.official_units import official_links, official_units
from services.registry.placements import Link, with_came_from
from services.registry.use_cases import NewMember, RegisterTeam, RegisterVillage
from shared.contracts.events.registry import (
    CameFrom,
    Placement,
    TeamCreated,
    TeamPlaced,
    UnitRegistered,
)
from tests.factories import LEGACY_COMMUNE, LEGACY_DISTRICT, LEGACY_PROVINCE, make_unit
from tests.unit.registry.fakes import FakeUnitOfWork, registry_with_map

TODAY = date(2026, 11, 28)
SPLIT = "04390"


def two_maps() -> FakeUnitOfWork:
    """Legacy Yên Bái with a whole commune (04378 → 04381) and a split one (04390 → 04381,
    04393); 2025 Lào Cai (15) and Lạng Sơn (20) with those communes."""
    uow = registry_with_map()
    new = [
        make_unit("15", edition="2025", level="province", parent_code=None, path=("15",)),
        make_unit("20", edition="2025", level="province", parent_code=None, path=("20",)),
        make_unit("04381", edition="2025", parent_code="15", path=("15", "04381")),
        make_unit("04393", edition="2025", parent_code="15", path=("15", "04393")),
        make_unit("06613", edition="2025", parent_code="20", path=("20", "06613")),
        make_unit(SPLIT),
    ]
    uow.units.rows |= {(u.edition, u.code): u for u in new}
    uow.links.rows = {
        Link("province", LEGACY_PROVINCE, "15"),
        Link("commune", LEGACY_COMMUNE, "04381"),
        Link("commune", SPLIT, "04381", partly=True),
        Link("commune", SPLIT, "04393", partly=True),
    }
    return uow


async def register(uow: FakeUnitOfWork, unit_code: str) -> domain.Team:
    command = RegisterTeam("legacy", unit_code, [NewMember("Lò Văn Pâng", "leader")])
    return await use_cases.register_team(uow, command, today=TODAY)


async def test_each_kind_of_legacy_team_lands_where_the_crosswalk_says() -> None:
    uow = two_maps()
    commune = await register(uow, LEGACY_COMMUNE)
    district = await register(uow, LEGACY_DISTRICT)
    province = await register(uow, LEGACY_PROVINCE)
    split = await register(uow, SPLIT)

    assert commune.placements == (
        Placement(edition="2025", unit_path=("15", "04381"), unit_level="commune"),
    )
    assert district.placements == (Placement(edition="2025", unit_path=("15",), unit_level=None),)
    assert province.placements == (
        Placement(edition="2025", unit_path=("15",), unit_level="province"),
    )
    assert split.placements == (
        Placement(edition="2025", unit_path=("15",), unit_level=None, placed=False),
    )
    created = [e for e in uow.published if isinstance(e, TeamCreated)]
    assert [e.payload.placements for e in created] == [
        t.placements for t in (commune, district, province, split)
    ]
    assert [t.team_id for t in await uow.teams.awaiting_placement("2025", "15")] == [split.team_id]


async def test_a_legacy_team_without_the_2025_map_has_no_placement() -> None:
    uow = registry_with_map()
    team = await register(uow, LEGACY_COMMUNE)
    assert team.placements == ()


async def test_the_backlog_places_a_team_stored_before_the_2025_map_once() -> None:
    uow = registry_with_map()
    team = await register(uow, LEGACY_COMMUNE)
    assert await uow.teams.without_placement("2025", after=None, limit=10) == [team.team_id]
    # Nothing to place it on yet: left as it is, no event.
    assert await use_cases.place_backlog_team(uow, team.team_id) is None

    mapped = two_maps()
    mapped.teams.rows = uow.teams.rows
    placed = await use_cases.place_backlog_team(mapped, team.team_id)
    assert placed is not None
    assert placed.version == team.version + 1
    assert placed.placements == (
        Placement(edition="2025", unit_path=("15", "04381"), unit_level="commune"),
    )
    (event,) = mapped.published
    assert isinstance(event, TeamPlaced)
    assert event.payload.placements == placed.placements
    assert await mapped.teams.without_placement("2025", after=None, limit=10) == []
    assert await use_cases.place_backlog_team(mapped, team.team_id) is None


async def test_a_village_is_carried_once_under_the_successor_commune() -> None:
    uow = two_maps()
    village = await use_cases.register_village(
        uow, RegisterVillage("legacy", LEGACY_COMMUNE, "Thôn Khe Cạn")
    )
    first = await register(uow, village.code)
    await use_cases.dissolve_team(uow, first.team_id)
    second = await register(uow, village.code)

    carried = [e for e in uow.published if isinstance(e, UnitRegistered) and e.edition == "2025"]
    assert [(e.unit_path, e.payload.name) for e in carried] == [
        (("15", "04381", "04381-001"), "Thôn Khe Cạn")
    ]
    # The carried village says where it came from, for the 2025 page's "came from" list.
    assert carried[0].payload.came_from == (CameFrom(code=village.code),)
    assert (
        first.placements
        == second.placements
        == (
            Placement(edition="2025", unit_path=("15", "04381", "04381-001"), unit_level="village"),
        )
    )


def test_loaded_2025_units_name_the_legacy_units_they_came_from() -> None:
    (lao_cai,) = official_units("2025", ["15"])
    units = {u.code: u for u in with_came_from(lao_cai.units, official_links("2025", ["15"])["15"])}
    # Lào Cai (15) absorbed Yên Bái (legacy 15); Xã Lang Thíp went whole into 04381.
    assert [c.code for c in units["15"].came_from] == ["10", "15"]
    assert CameFrom(code=LEGACY_COMMUNE, partly=False) in units["04381"].came_from
    assert all(u.came_from for u in units.values() if u.level == "commune")
    assert units["04381"].state().came_from == units["04381"].came_from


async def test_a_waiting_team_is_placed_then_moved_each_a_new_version() -> None:
    uow = two_maps()
    team = await register(uow, SPLIT)
    placed = await use_cases.place_team(uow, team.team_id, "2025", "04393")
    moved = await use_cases.place_team(uow, team.team_id, "2025", "04381")

    assert (placed.version, moved.version) == (2, 3)
    assert moved.placements == (
        Placement(edition="2025", unit_path=("15", "04381"), unit_level="commune"),
    )
    events = [e for e in uow.published if isinstance(e, TeamPlaced)]
    assert [e.payload.version for e in events] == [2, 3]
    assert await uow.teams.awaiting_placement("2025", "15") == []
    # Members and dissolving keep the placement.
    dissolved = await use_cases.dissolve_team(uow, team.team_id)
    assert dissolved.placements == moved.placements


@pytest.mark.parametrize(
    ("unit_code", "error"),
    [
        ("06613", domain.OutsideProvinceError),  # Lạng Sơn: not where Yên Bái went
        ("15", domain.WrongLevelError),  # a province, not a commune or village
        ("99999", domain.UnknownUnitError),
    ],
)
async def test_placements_outside_the_province_or_level_are_refused(
    unit_code: str, error: type[domain.RegistryError]
) -> None:
    uow = two_maps()
    team = await register(uow, SPLIT)
    with pytest.raises(error):
        await use_cases.place_team(uow, team.team_id, "2025", unit_code)
    assert (await uow.teams.get(team.team_id)).version == 1  # type: ignore[union-attr]


async def test_a_dissolved_or_2025_team_cannot_be_placed() -> None:
    uow = two_maps()
    team = await register(uow, SPLIT)
    await use_cases.dissolve_team(uow, team.team_id)
    with pytest.raises(domain.TeamDissolvedError):
        await use_cases.place_team(uow, team.team_id, "2025", "04381")
    own = await use_cases.register_team(
        uow, RegisterTeam("2025", "04393", [NewMember("A", "leader")]), today=TODAY
    )
    assert own.placements == ()
    with pytest.raises(domain.EditionMismatchError):
        await use_cases.place_team(uow, own.team_id, "2025", "04381")
