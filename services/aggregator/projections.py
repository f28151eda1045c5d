"""Stream events → figure deltas: one match over event types, pure logic, no I/O.

A batch is applied in three steps that `use_cases.apply_batch` runs in one transaction:
the store says which events and units are new and what each team's stored state is;
`plan_batch` turns that into deltas summed per key; once the store has added the
deltas and reports each unit's active-team count, `coverage_deltas` turns the units
that became covered (or stopped being covered) into covered-count changes above them.

History by business date rides in the same plan: every counter a team changes is also
kept as changes per (unit, day) — a team counts from established_on until the day before
dissolved_on, each member within that from joined_on until the day before left_on — and
support per (unit, day, category) of occurred_on. A newer state subtracts the stored
state's dated changes and adds its own, as for the live figures; `dated_coverage_deltas`
then turns each unit's active-team count by day into covered-count changes by day above
it, from the unit's stored history (read under its figures row lock).

Why the result does not depend on order or duplicates:
- units count in the denominators only the first time the store sees them;
- a team contributes its newest state only: a newer version subtracts the stored
  state's contribution and adds its own, an older or equal one changes nothing;
- support events are additive and the store keeps each event_id once;
- a team's support also counts where the team is placed on the other map: the store keeps
  each team's support per (day, category) (team_support), so whichever comes first, the
  support or the placement, the team's support ends up at the newest placement only (a
  support event counts at the placement the team has after its batch; a team placed
  elsewhere takes the support stored before its batch from the old placement to the new);
- a unit's target is kept by version, like a team's state (the store keeps the newest).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from services.aggregator.domain import (
    PLACED_ON_THE_OTHER_MAP,
    DayKey,
    FigureDelta,
    FigureKey,
    Spot,
    SupportDayKey,
    SupportDelta,
    SupportKey,
    TargetRecord,
    TeamRecord,
    TeamSupportKey,
    UnitRecord,
    ancestor_keys,
    covered_steps,
    member_steps,
    month_of,
    scope_keys,
)
from shared.contracts.dates import today_in_vietnam
from shared.contracts.events import (
    Event,
    SupportRecorded,
    TargetSet,
    TeamCreated,
    TeamDissolved,
    TeamEvent,
    TeamMembersChanged,
    TeamPlaced,
    UnitRegistered,
)
from shared.contracts.units import EDITION_LEVELS, Edition, Level, UnitPath


def unit_record(event: UnitRegistered) -> UnitRecord:
    unit = event.payload
    return UnitRecord(
        edition=event.edition,
        code=unit.code,
        name=unit.name,
        level=unit.level,
        parent_code=unit.parent_code,
        path=event.unit_path,
        lat=unit.lat,
        lon=unit.lon,
        came_from=tuple((c.code, c.partly) for c in unit.came_from),
    )


def team_record(event: TeamEvent) -> TeamRecord:
    team = event.dated()
    established = team.established_on or today_in_vietnam(event.occurred_at)  # dated() sets it
    periods = [
        (m.joined_on or established, m.left_on, m.trained_on)
        for m in (*team.members, *team.former_members)
    ]
    return TeamRecord(
        team_id=team.team_id,
        edition=event.edition,
        version=team.version,
        status=team.status,
        unit_path=event.unit_path,
        unit_level=team.unit_level,
        member_count=team.member_count,
        trained_count=team.trained_count,
        placements=tuple(
            Spot(p.edition, p.unit_path, p.unit_level, p.placed) for p in team.placements
        ),
        established_on=established,
        dissolved_on=team.dissolved_on,
        member_steps=member_steps(established, team.dissolved_on, periods),
    )


def target_record(event: TargetSet) -> TargetRecord:
    target = event.payload
    return TargetRecord(
        edition=event.edition,
        code=target.code,
        version=target.version,
        due=target.due,
        covered_pct=dict(target.covered_pct),
        members_trained_pct=target.members_trained_pct,
        outcomes=dict(target.outcomes),
    )


def first_of_each(events: Iterable[Event], fresh: set[uuid.UUID]) -> list[Event]:
    """The events whose id the store has just claimed, each once (a batch may repeat one)."""
    seen: set[uuid.UUID] = set()
    kept = []
    for event in events:
        if event.event_id in fresh and event.event_id not in seen:
            seen.add(event.event_id)
            kept.append(event)
    return kept


def units_in(events: Iterable[Event]) -> list[UnitRecord]:
    return [unit_record(e) for e in events if isinstance(e, UnitRegistered)]


def newest_teams(events: Iterable[Event]) -> dict[uuid.UUID, TeamRecord]:
    """The newest state of each team the events mention (the store locks these teams)."""
    newest: dict[uuid.UUID, TeamRecord] = {}
    for event in events:
        if isinstance(event, TeamCreated | TeamMembersChanged | TeamDissolved | TeamPlaced):
            _keep_newest(newest, team_record(event))
    return newest


def teams_to_lock(
    events: Iterable[Event], newest: Mapping[uuid.UUID, TeamRecord]
) -> list[TeamRecord]:
    """`newest`, and a stand-in for each other team that recorded support in the events and
    may be placed on the other map: its placement decides where that support also counts,
    so it is locked like the others (a stand-in is version 0: it contributes nothing until
    the team's first event)."""
    locked = dict(newest)
    for event in events:
        if (
            isinstance(event, SupportRecorded)
            and event.edition in PLACED_ON_THE_OTHER_MAP
            and event.payload.team_id not in locked
        ):
            path = event.unit_path
            locked[event.payload.team_id] = TeamRecord(
                team_id=event.payload.team_id,
                edition=event.edition,
                version=0,
                status="dissolved",
                unit_path=path,
                unit_level=EDITION_LEVELS[event.edition][len(path) - 1],
                member_count=0,
            )
    return list(locked.values())


def teams_placed_elsewhere(
    newest: Mapping[uuid.UUID, TeamRecord], stored: Mapping[uuid.UUID, TeamRecord]
) -> list[uuid.UUID]:
    """Teams whose newest state in the batch changes their placements: their stored support
    moves with them (the store reads it under the teams' locks)."""
    moved = []
    for team_id, team in sorted(newest.items()):
        old = stored.get(team_id)
        if (old is None and team.placements) or (
            old is not None and team.version > old.version and team.placements != old.placements
        ):
            moved.append(team_id)
    return moved


def _keep_newest(newest: dict[uuid.UUID, TeamRecord], team: TeamRecord) -> None:
    current = newest.get(team.team_id)
    if current is None or team.version > current.version:
        newest[team.team_id] = team


@dataclass(frozen=True, slots=True)
class DirectChange:
    """A change to the number of active teams attached to one unit, and where that unit is."""

    edition: Edition
    unit_path: UnitPath
    level: Level
    delta: int


@dataclass(slots=True)
class DatedDirectChange:
    """Changes by day to the number of teams attached to one unit, and where that unit is."""

    edition: Edition
    unit_path: UnitPath
    level: Level
    steps: dict[date, int] = field(default_factory=dict)


@dataclass(slots=True)
class Plan:
    """Everything one batch changes, summed per key; zero deltas kept on purpose.

    Every key a team touches stays in `figures` even when its deltas cancel out, so the
    store locks it in the first (key-ordered) write, and the coverage write that may
    follow only touches rows this transaction already holds: no second lock order.
    """

    figures: dict[FigureKey, FigureDelta] = field(default_factory=dict)
    teams: dict[uuid.UUID, TeamRecord] = field(default_factory=dict)
    direct_changes: dict[FigureKey, DirectChange] = field(default_factory=dict)
    by_category: dict[SupportKey, SupportDelta] = field(default_factory=dict)
    by_month: dict[SupportKey, SupportDelta] = field(default_factory=dict)
    # (team, "YYYY-MM") a team recorded support in: what reporting rates count.
    # Each team's support per day and category, what follows it to its placement.
    team_support: dict[TeamSupportKey, SupportDelta] = field(default_factory=dict)
    team_months: set[tuple[uuid.UUID, str]] = field(default_factory=set)
    # History by business date: team counters' changes per day, each covering unit's
    # team count by day (for the dated coverage), and support per day and category.
    history: dict[DayKey, FigureDelta] = field(default_factory=dict)
    dated_direct: dict[FigureKey, DatedDirectChange] = field(default_factory=dict)
    by_day: dict[SupportDayKey, SupportDelta] = field(default_factory=dict)
    # The newest target per unit in the batch; the store keeps it only if newer than its own.
    targets: dict[FigureKey, TargetRecord] = field(default_factory=dict)

    def add(self, key: FigureKey, delta: FigureDelta) -> None:
        row = self.figures.get(key)
        if row is None:
            row = self.figures[key] = FigureDelta()
        row.add(delta)

    def add_history(self, key: DayKey, delta: FigureDelta) -> None:
        row = self.history.get(key)
        if row is None:
            row = self.history[key] = FigureDelta()
        row.add(delta)

    def changed_keys(self) -> set[FigureKey]:
        support = (FigureKey(k.edition, k.code) for k in (*self.by_category, *self.by_month))
        return {*self.figures, *support, *self.targets}


def plan_batch(
    events: Sequence[Event],
    new_units: Iterable[UnitRecord],
    stored_teams: Mapping[uuid.UUID, TeamRecord],
    stored_support: Mapping[uuid.UUID, Mapping[TeamSupportKey, SupportDelta]] | None = None,
) -> Plan:
    """Deltas for `events` (already deduplicated by the store).

    `new_units`: the units the store had not seen before this batch; `stored_teams`: the
    stored state of every team the batch mentions (locked by the store until commit);
    `stored_support`: the support stored before this batch of each team it places
    elsewhere (`teams_placed_elsewhere`).
    """
    plan = Plan()
    new_unit_keys = {u.key for u in new_units}
    newest: dict[uuid.UUID, TeamRecord] = {}
    support: list[SupportRecorded] = []
    for event in events:
        match event:
            case UnitRegistered():
                unit = unit_record(event)
                if unit.key in new_unit_keys:
                    new_unit_keys.discard(unit.key)
                    _count_unit(plan, unit)
            case TeamCreated() | TeamMembersChanged() | TeamDissolved() | TeamPlaced():
                _keep_newest(newest, team_record(event))
            case SupportRecorded():
                support.append(event)
            case TargetSet():
                target = target_record(event)
                kept = plan.targets.get(target.key)
                if kept is None or target.version > kept.version:
                    plan.targets[target.key] = target
    for team_id, team in sorted(newest.items()):
        stored = stored_teams.get(team_id)
        if stored is None or team.version > stored.version:
            _replace_team(plan, stored, team)
            _move_support(plan, stored, team, (stored_support or {}).get(team_id, {}))
    for event in support:
        _count_support(plan, event, stored_teams)
    return plan


def _count_unit(plan: Plan, unit: UnitRecord) -> None:
    # The unit's own row exists from now on (its children are listed with figures).
    plan.add(unit.key, FigureDelta())
    counted = FigureDelta()
    setattr(counted, f"total_{unit.level}", 1)
    for key in ancestor_keys(unit.edition, unit.path):
        plan.add(key, counted)


def _replace_team(plan: Plan, old: TeamRecord | None, new: TeamRecord) -> None:
    """The old state's contribution out, the new one's in, at every spot each counts.

    A team counts once per edition: at its own unit, and (a legacy team) where it is
    placed on the 2025 map, covering that unit, or only counted in its province (a
    district team) or counted there as waiting for a placement.
    """
    plan.teams[new.team_id] = new
    for team, sign in ((old, -1), (new, 1)):
        if team is None:
            continue
        if team.active:
            for spot in team.spots():
                _count_spot(plan, spot, sign, team.member_count, team.trained_count)
        if team.established_on is not None:
            for spot in team.spots():
                _date_spot(plan, spot, sign, team, team.established_on)


def _count_spot(plan: Plan, spot: Spot, sign: int, members: int, trained: int) -> None:
    covers = spot.level is not None
    unit_key = spot.unit_key
    waiting = FigureDelta(unplaced_teams=sign, unplaced_members=sign * members)
    for key in scope_keys(spot.edition, spot.path):
        plan.add(
            key,
            FigureDelta(
                teams=sign,
                members=sign * members,
                members_trained=sign * trained,
                direct_teams=sign if covers and key == unit_key else 0,
            ),
        )
        if not spot.placed:
            plan.add(key, waiting)
    if spot.level is None:
        return
    change = plan.direct_changes.get(unit_key)
    plan.direct_changes[unit_key] = DirectChange(
        edition=spot.edition,
        unit_path=spot.path,
        level=spot.level,
        delta=(change.delta if change else 0) + sign,
    )


def _date_spot(plan: Plan, spot: Spot, sign: int, team: TeamRecord, established: date) -> None:
    """The team's dated changes at one spot: it starts and stops counting, members come and go.

    A dissolved team keeps its past here (it left the live figures only).
    """
    covers = spot.level is not None
    days = [(established, sign)]
    if team.dissolved_on is not None:
        days.append((team.dissolved_on, -sign))
    for key in scope_keys(spot.edition, spot.path):
        direct = covers and key == spot.unit_key
        for day, step in days:
            plan.add_history(
                DayKey(key.edition, key.code, day),
                FigureDelta(
                    teams=step,
                    direct_teams=step if direct else 0,
                    unplaced_teams=0 if spot.placed else step,
                ),
            )
        for day, members, trained in team.member_steps:
            plan.add_history(
                DayKey(key.edition, key.code, day),
                FigureDelta(
                    members=sign * members,
                    members_trained=sign * trained,
                    unplaced_members=0 if spot.placed else sign * members,
                ),
            )
    if spot.level is None:
        return
    # The unit's figures row is locked first (key order) by every batch that changes its
    # dated team count, so its stored history read afterwards is the latest committed.
    plan.add(spot.unit_key, FigureDelta())
    change = plan.dated_direct.get(spot.unit_key)
    if change is None:
        change = plan.dated_direct[spot.unit_key] = DatedDirectChange(
            spot.edition, spot.path, spot.level
        )
    for day, step in days:
        change.steps[day] = change.steps.get(day, 0) + step


def dated_coverage_deltas(
    changes: Mapping[FigureKey, DatedDirectChange],
    stored: Mapping[FigureKey, Mapping[date, int]],
) -> dict[DayKey, FigureDelta]:
    """Covered-count changes by day above each unit whose team count by day changed.

    `stored`: each changed unit's team count as changes by day before this batch (read
    under its figures row lock); the unit's coverage by day before and after this batch's
    changes are compared, and the difference is dated on its ancestors.
    """
    deltas: dict[DayKey, FigureDelta] = {}
    for key, change in sorted(changes.items()):
        before = dict(stored.get(key, {}))
        after = dict(before)
        for day, step in change.steps.items():
            after[day] = after.get(day, 0) + step
        was, now = covered_steps(before), covered_steps(after)
        for day in sorted(was.keys() | now.keys()):
            shift = now.get(day, 0) - was.get(day, 0)
            if not shift:
                continue
            covered = FigureDelta()
            setattr(covered, f"covered_{change.level}", shift)
            for ancestor in ancestor_keys(change.edition, change.unit_path):
                deltas.setdefault(DayKey(ancestor.edition, ancestor.code, day), FigureDelta()).add(
                    covered
                )
    return deltas


def _count_support(
    plan: Plan, event: SupportRecorded, stored_teams: Mapping[uuid.UUID, TeamRecord]
) -> None:
    """At the unit it was recorded under, and wherever its team is placed on the other map
    after this batch (a team waiting for a placement, or a district team: in that province)."""
    support = event.payload
    # Version 1 events carry no outcomes: the contract reads them as zeros.
    vneid, dossiers, payment, ecommerce, other = support.outcomes.counts()
    one = SupportDelta(1, support.residents_helped, vneid, dossiers, payment, ecommerce, other)
    plan.team_months.add((support.team_id, month_of(support.occurred_on)))
    placements: tuple[Spot, ...] = ()
    if event.edition in PLACED_ON_THE_OTHER_MAP:
        key = TeamSupportKey(support.team_id, support.occurred_on, support.category)
        plan.team_support.setdefault(key, SupportDelta()).add(one)
        team = plan.teams.get(support.team_id) or stored_teams.get(support.team_id)
        placements = team.placements if team else ()
    for edition, path in (
        (event.edition, event.unit_path),
        *((p.edition, p.path) for p in placements),
    ):
        _add_support(plan, edition, path, support.occurred_on, support.category, one, 1)


def _move_support(
    plan: Plan,
    old: TeamRecord | None,
    new: TeamRecord,
    stored: Mapping[TeamSupportKey, SupportDelta],
) -> None:
    """The team's support stored before this batch out of its old placements, into its new."""
    before = old.placements if old else ()
    if before == new.placements:
        return
    for key, counted in sorted(stored.items()):
        for placements, sign in ((before, -1), (new.placements, 1)):
            for spot in placements:
                _add_support(plan, spot.edition, spot.path, key.day, key.category, counted, sign)


def _add_support(
    plan: Plan,
    edition: Edition,
    path: UnitPath,
    day: date,
    category: str,
    counted: SupportDelta,
    sign: int,
) -> None:
    """`counted` (times `sign`) in the figures and every split of each unit above `path`."""
    events, residents, vneid, dossiers, payment, ecommerce, other = (
        sign * n for n in counted.as_tuple()
    )
    signed = counted if sign == 1 else SupportDelta(*(sign * n for n in counted.as_tuple()))
    figure = FigureDelta(
        support_events=events,
        support_residents=residents,
        vneid_activations=vneid,
        public_service_dossiers=dossiers,
        payment_accounts=payment,
        ecommerce_accounts=ecommerce,
        other_accounts=other,
    )
    month = month_of(day)
    for key in scope_keys(edition, path):
        plan.add(key, figure)
        for split, bucket in ((plan.by_category, category), (plan.by_month, month)):
            support_key = SupportKey(key.edition, key.code, bucket)
            row = split.get(support_key)
            if row is None:
                row = split[support_key] = SupportDelta()
            row.add(signed)
        day_key = SupportDayKey(key.edition, key.code, day, category)
        day_row = plan.by_day.get(day_key)
        if day_row is None:
            day_row = plan.by_day[day_key] = SupportDelta()
        day_row.add(signed)


def coverage_deltas(
    changes: Mapping[FigureKey, DirectChange], direct_teams_now: Mapping[FigureKey, int]
) -> dict[FigureKey, FigureDelta]:
    """Covered-count changes for the units whose active-team count crossed zero.

    `direct_teams_now`: each changed unit's count after this batch's deltas were added
    (read under the row lock, so concurrent batches cannot both see the same crossing).
    """
    deltas: dict[FigureKey, FigureDelta] = {}
    for key, change in sorted(changes.items()):
        if change.delta == 0:
            continue
        now = direct_teams_now[key]
        before = now - change.delta
        if (before > 0) == (now > 0):
            continue
        covered = FigureDelta()
        setattr(covered, f"covered_{change.level}", 1 if now > 0 else -1)
        for ancestor in ancestor_keys(change.edition, change.unit_path):
            deltas.setdefault(ancestor, FigureDelta()).add(covered)
    return deltas
