"""Apply one batch of stream events to the projections: claim, load, plan, write — one transaction.

The caller opens the store on a transaction and commits it after `apply_batch` returns;
only then are the stream entries acknowledged. Everything the store writes, it writes
in key order (events, units, teams, figures, history, support, team support), so
concurrent batches of several aggregator processes wait for each other instead of
deadlocking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.aggregator.domain import FigureKey
from services.aggregator.ports import ProjectionStore
from services.aggregator.projections import (
    coverage_deltas,
    dated_coverage_deltas,
    first_of_each,
    newest_teams,
    plan_batch,
    teams_placed_elsewhere,
    teams_to_lock,
    units_in,
)
from shared.contracts.events import Event, UnitRegistered


@dataclass(frozen=True, slots=True)
class AppliedBatch:
    received: int
    applied: int
    changed: frozenset[FigureKey]
    # Events for units not registered (yet): neither applied nor recorded as processed.
    held_back: tuple[Event, ...] = ()


async def apply_batch(
    store: ProjectionStore,
    stream: str,
    events: Sequence[Event],
    *,
    require_known_units: bool = False,
) -> AppliedBatch:
    """Apply what is new in `events`; delivering the same events again changes nothing.

    With `require_known_units` (the live consumer), a team or support event counts only
    once its unit is registered at the path the event names (here or earlier in the
    batch); the others are held back for a later delivery, so an event for a unit that
    never comes ends in the dead-letter stream instead of in the figures.
    """
    held_back: list[Event] = []
    if require_known_units:
        events, held_back = await _split_by_unit(store, events)
    fresh = await store.claim_events(stream, {e.event_id for e in events})
    batch = first_of_each(events, fresh)
    if not batch:
        return AppliedBatch(len(events) + len(held_back), 0, frozenset(), tuple(held_back))
    new_units = await store.add_units(units_in(batch))
    newest = newest_teams(batch)
    locked = teams_to_lock(batch, newest)
    stored = await store.lock_teams(locked) if locked else {}
    moved = teams_placed_elsewhere(newest, stored)
    stored_support = await store.team_support(moved) if moved else {}
    plan = plan_batch(batch, new_units, stored, stored_support)
    if plan.teams:
        await store.save_teams(list(plan.teams.values()))
    direct_now = await store.add_figures(plan.figures, plan.direct_changes.keys())
    coverage = coverage_deltas(plan.direct_changes, direct_now)
    if coverage:
        await store.add_figures(coverage, ())
    if plan.dated_direct:
        # Read under the units' figures row locks taken just above: the latest committed.
        stored_direct = await store.direct_history(plan.dated_direct.keys())
        for day_key, delta in dated_coverage_deltas(plan.dated_direct, stored_direct).items():
            plan.add_history(day_key, delta)
    if plan.history:
        await store.add_history(plan.history)
    await store.add_support(plan.by_category, plan.by_month, plan.by_day)
    if plan.team_support:
        await store.add_team_support(plan.team_support)
    if plan.team_months:
        await store.add_team_months(plan.team_months)
    if plan.targets:
        await store.save_targets(list(plan.targets.values()))
    changed = frozenset(plan.changed_keys())
    await store.announce(changed)
    return AppliedBatch(len(events) + len(held_back), len(batch), changed, tuple(held_back))


async def _split_by_unit(
    store: ProjectionStore, events: Sequence[Event]
) -> tuple[list[Event], list[Event]]:
    """The events whose unit is registered at the path they name, and the others."""
    registered = {
        FigureKey(e.edition, e.payload.code): e.unit_path
        for e in events
        if isinstance(e, UnitRegistered)
    }
    named = {FigureKey(e.edition, e.unit_path[-1]) for e in events}
    paths = registered | await store.unit_paths(named - registered.keys())
    known: list[Event] = []
    unknown: list[Event] = []
    for event in events:
        path = paths.get(FigureKey(event.edition, event.unit_path[-1]))
        ok = isinstance(event, UnitRegistered) or path == event.unit_path
        (known if ok else unknown).append(event)
    return known, unknown
