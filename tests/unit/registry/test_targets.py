"""Setting targets on the fakes: versions, the event, the levels a unit's target may name."""

from __future__ import annotations

from datetime import date

import pytest

from services.registry import use_cases
from services.registry.targets import LevelNotBelowUnitError
from shared.contracts.events import TargetSet
from tests.factories import LEGACY_COMMUNE, LEGACY_PROVINCE
from tests.unit.registry.fakes import FakeUnitOfWork, registry_with_map


async def unit_of(uow: FakeUnitOfWork, code: str) -> use_cases.Unit:
    return await use_cases.locked_unit(uow, "legacy", code)


async def test_a_target_replaces_the_last_one_version_by_version_and_is_published() -> None:
    uow = registry_with_map()
    province = await unit_of(uow, LEGACY_PROVINCE)
    command = use_cases.SetTarget(
        "legacy", LEGACY_PROVINCE, due=date(2022, 11, 30), covered_pct={"village": 90}
    )

    first = await use_cases.set_target(uow, province, command)
    same = await use_cases.set_target(uow, province, command)
    second = await use_cases.set_target(
        uow, province, use_cases.SetTarget("legacy", LEGACY_PROVINCE, members_trained_pct=100)
    )

    assert (first.version, same.version, second.version) == (1, 1, 2)
    assert second.covered_pct == {}
    events = [e for e in uow.published if isinstance(e, TargetSet)]
    assert [(e.unit_path, e.payload.version) for e in events] == [
        ((LEGACY_PROVINCE,), 1),
        ((LEGACY_PROVINCE,), 2),
    ]
    assert await use_cases.list_targets(uow, "legacy", None) == [second]


async def test_coverage_targets_name_only_levels_below_the_unit() -> None:
    uow = registry_with_map()
    commune = await unit_of(uow, LEGACY_COMMUNE)

    with pytest.raises(LevelNotBelowUnitError) as refused:
        await use_cases.set_target(
            uow, commune, use_cases.SetTarget("legacy", LEGACY_COMMUNE, covered_pct={"commune": 1})
        )

    assert refused.value.details["allowed"] == ["village"]
    assert uow.published == []
