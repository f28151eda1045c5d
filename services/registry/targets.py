"""Targets: what a province aims for at a unit it covers, the rules a target keeps (no I/O).

An operator or admin sets a unit's whole target at once (PUT): the coverage share per
level below the unit, the share of members trained, outcome totals, and the day it is due.
The registry keeps the newest one per unit, one version higher each time, and publishes
it as `target.set` so the aggregator shows it against the actual figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from services.registry.domain import DateBeforeEarliestError, RegistryError, Unit
from shared.contracts.dates import EARLIEST_DATE
from shared.contracts.events.activity import OutcomeKind
from shared.contracts.events.registry import TargetState
from shared.contracts.units import EDITION_LEVELS, Edition, Level


class LevelNotBelowUnitError(RegistryError):
    """A coverage target at a level the unit has no units of (its own level or above)."""

    code = "level_not_below_unit"


@dataclass(frozen=True)
class Target:
    edition: Edition
    code: str
    level: Level
    version: int
    due: date | None = None
    covered_pct: Mapping[Level, float] = field(default_factory=dict)
    members_trained_pct: float | None = None
    outcomes: Mapping[OutcomeKind, int] = field(default_factory=dict)

    def state(self) -> TargetState:
        return TargetState(
            code=self.code,
            level=self.level,
            version=self.version,
            due=self.due,
            covered_pct=dict(self.covered_pct),
            members_trained_pct=self.members_trained_pct,
            outcomes=dict(self.outcomes),
        )


def set_target(
    unit: Unit,
    current: Target | None,
    *,
    due: date | None,
    covered_pct: Mapping[Level, float],
    members_trained_pct: float | None,
    outcomes: Mapping[OutcomeKind, int],
) -> Target:
    """The unit's new target, one version above `current` (ranges are the contract's)."""
    below = EDITION_LEVELS[unit.edition][EDITION_LEVELS[unit.edition].index(unit.level) + 1 :]
    wrong = sorted(set(covered_pct) - set(below))
    if wrong:
        raise LevelNotBelowUnitError(
            f"covered_pct names {', '.join(wrong)}, but {unit.level} {unit.code} "
            f"(edition {unit.edition}) has units only at {', '.join(below) or 'no level'} "
            "below it",
            levels=wrong,
            allowed=list(below),
        )
    if due is not None and due < EARLIEST_DATE:
        raise DateBeforeEarliestError(
            f"due {due} is before {EARLIEST_DATE}, the earliest date the programme takes",
            field="due",
            value=due,
            earliest=EARLIEST_DATE,
        )
    return Target(
        edition=unit.edition,
        code=unit.code,
        level=unit.level,
        version=1 if current is None else current.version + 1,
        due=due,
        # In the edition's level order, whatever order the caller sent.
        covered_pct={level: covered_pct[level] for level in below if level in covered_pct},
        members_trained_pct=members_trained_pct,
        outcomes=dict(outcomes),
    )
