"""Property: any permutation of an event log, with duplicates, in any batches: the same figures.

A registry and an activity history are simulated with hypothesis (units, teams created,
members changed, teams dissolved, support recorded, the registry's rules kept); the
figures from the log in order must equal both a recount from the final state (the
definitions) and the figures from any shuffled, duplicated, re-batched delivery; and so
must the history by business date, read at random dates.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from services.aggregator.domain import NATIONAL, FigureDelta, FigureKey
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import Event
from shared.contracts.events.activity import CATEGORIES
from shared.contracts.streams import REGISTRY_EVENTS
from tests.unit.aggregator.fakes import InMemoryProjectionStore
from tests.unit.aggregator.history import (
    OPERATIONS,
    Operation,
    Shape,
    recount,
    recount_as_of,
    simulate,
)

shapes = st.lists(
    st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=2), min_size=1, max_size=2),
    min_size=1,
    max_size=2,
)
operations = st.lists(
    st.tuples(
        st.sampled_from(OPERATIONS),
        st.integers(0, 10_000),
        st.integers(1, 6),
        st.sampled_from(CATEGORIES),
        st.dates(date(2023, 1, 1), date(2024, 12, 31)),
    ),
    max_size=40,
)


def deliver(log: list[Event], batch_sizes: list[int]) -> InMemoryProjectionStore:
    store = InMemoryProjectionStore()

    async def run() -> None:
        start, sizes = 0, iter(batch_sizes)
        while start < len(log):
            size = next(sizes, 7)
            await apply_batch(store, REGISTRY_EVENTS, log[start : start + size])
            start += size

    asyncio.run(run())
    return store


@settings(max_examples=150, deadline=None)
@given(shape=shapes, ops=operations, data=st.data())
def test_any_order_with_duplicates_in_any_batches_gives_the_figures_of_the_definitions(
    shape: Shape,
    ops: list[Operation],
    data: st.DataObject,
) -> None:
    world = simulate(shape, ops)
    in_order = deliver(world.log, [len(world.log)])
    assert in_order.snapshot() == recount(world)
    assert in_order.figures_of("legacy", NATIONAL).total_province == len(shape)

    duplicates = data.draw(st.lists(st.sampled_from(world.log), max_size=len(world.log)))
    shuffled = data.draw(st.permutations([*world.log, *duplicates]))
    batch_sizes = data.draw(st.lists(st.integers(1, 12), max_size=len(shuffled)))
    delivered = deliver(shuffled, batch_sizes)

    assert delivered.snapshot() == in_order.snapshot()

    # Histories: read at random dates, the same as a recount from the final states.
    days = data.draw(st.lists(st.dates(date(2022, 12, 30), date(2025, 1, 2)), max_size=5))
    for day in [*days, date(2030, 1, 1)]:
        expected = recount_as_of(world, day)
        for store in (in_order, delivered):
            assert history_at(store, day) == dated(expected), day


def dated(figures: dict[FigureKey, FigureDelta]) -> dict[FigureKey, FigureDelta]:
    """The recount's history counters only (the fake's history holds no support)."""
    kept = {}
    for key, row in figures.items():
        row = replace(row, support_events=0, support_residents=0)
        if not row.is_zero():
            kept[key] = row
    return kept


def history_at(store: InMemoryProjectionStore, day: date) -> dict[FigureKey, FigureDelta]:
    keys = {FigureKey(k.edition, k.code) for k in store.history}
    found = {key: store.figures_as_of(key.edition, key.code, day) for key in keys}
    return {key: figures for key, figures in found.items() if not figures.is_zero()}
