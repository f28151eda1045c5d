"""Targets in the aggregator: the newest version per unit is kept, and parts meet figures."""

from __future__ import annotations

from datetime import date

from services.aggregator.domain import FigureDelta, FigureKey, TargetRecord, target_progress
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import TargetSet
from shared.contracts.events.registry import TargetState
from shared.contracts.streams import REGISTRY_EVENTS
from tests.unit.aggregator.fakes import InMemoryProjectionStore, unit_registered

PATH = ("15", "136", "04378")


def target_set(version: int, commune_pct: float) -> TargetSet:
    return TargetSet.new(
        edition="legacy",
        unit_path=("15",),
        payload=TargetState(
            code="15",
            level="province",
            version=version,
            due=date(2022, 11, 30),
            covered_pct={"commune": commune_pct},
        ),
    )


async def test_the_newest_target_wins_whatever_order_the_events_come_in() -> None:
    store = InMemoryProjectionStore()
    await apply_batch(store, REGISTRY_EVENTS, [unit_registered(("15",), "province")])

    first = await apply_batch(store, REGISTRY_EVENTS, [target_set(2, 90), target_set(1, 50)])
    await apply_batch(store, REGISTRY_EVENTS, [target_set(1, 50)])  # late and older

    assert store.targets[FigureKey("legacy", "15")].covered_pct == {"commune": 90}
    assert FigureKey("legacy", "15") in first.changed


def test_each_part_of_a_target_meets_its_figure() -> None:
    target = TargetRecord(
        edition="legacy",
        code="15",
        version=1,
        due=date(2022, 11, 30),
        covered_pct={"commune": 100, "village": 0},
        members_trained_pct=100,
        outcomes={"vneid_activations": 400},
    )
    counters = FigureDelta(covered_commune=20, total_commune=25, members=0, vneid_activations=100)

    parts = {p.figure: p for p in target_progress(target, counters)}

    assert list(parts) == [
        "covered_pct.commune",
        "covered_pct.village",
        "members_trained_pct",
        "outcomes.vneid_activations",
    ]
    assert (parts["covered_pct.commune"].actual, parts["covered_pct.commune"].progress) == (80, 0.8)
    # No villages registered, no members: nothing to measure, not 0.
    assert parts["covered_pct.village"].actual is None
    assert parts["members_trained_pct"].progress is None
    assert parts["outcomes.vneid_activations"].progress == 0.25
    assert {p.due for p in parts.values()} == {date(2022, 11, 30)}
