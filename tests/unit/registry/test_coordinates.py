"""Unit centres from the vietnamadminunits data file, attached at `cdtt units load`."""

from __future__ import annotations

import sys

import pytest

from services.registry import use_cases
from services.registry.adapters.coordinates import data_file, unit_centres
from services.registry.adapters.official_units import official_units, with_centres
from shared.contracts.events import UnitRegistered
from tests.unit.registry.fakes import FakeUnitOfWork

MAU_A = "04375"  # Xã Mậu A of Văn Yên (legacy), the same code on the 2025 map


def test_the_data_file_is_found_without_importing_the_package() -> None:
    assert data_file().name == "dataset.db"
    # Importing it would pull in shapely and geopy (its parser), which are not installed.
    assert "vietnamadminunits" not in sys.modules


@pytest.mark.parametrize("edition", ["2025", "legacy"])
def test_every_official_commune_of_an_edition_has_a_centre(edition: str) -> None:
    centres = unit_centres(edition)  # type: ignore[arg-type]
    communes = [
        u
        for p in official_units(edition)
        for u in p.units
        if u.level == "commune"  # type: ignore[arg-type]
    ]
    placed = [u for u in communes if ("commune", u.code) in centres]
    # The data file misses 26 of the 10,051 legacy communes (measured); those are not dots.
    assert len(communes) - len(placed) <= (0 if edition == "2025" else 30)
    lat, lon = centres[("commune", MAU_A)]
    # 2025: (21.8958, 104.701); the legacy rows place it a little south (21.88).
    assert abs(lat - 21.89) < 0.03
    assert abs(lon - 104.70) < 0.03
    assert all(8.0 < lat < 23.5 and 102.0 < lon < 117.5 for lat, lon in centres.values())


async def test_loaded_units_carry_their_centre_into_unit_registered() -> None:
    yen_bai = with_centres(official_units("2025", ["15"]), unit_centres("2025"))[0]
    uow = FakeUnitOfWork()
    added = await use_cases.register_units(uow, yen_bai.units)
    assert len(added) == len(yen_bai.units)
    events = [e for e in uow.published if isinstance(e, UnitRegistered)]
    by_code = {e.payload.code: e.payload for e in events}
    assert by_code[MAU_A].lat is not None
    assert by_code[MAU_A].lon is not None
    assert all(e.schema_version >= 2 for e in events)
