"""What the aggregator's use case needs from storage: the projections inside one transaction.

`adapters/store.py` implements the port over PostgreSQL (every write in key order);
the unit tests implement it in dicts (tests/unit/aggregator/fakes.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Protocol

from services.aggregator import domain
from shared.contracts.units import UnitPath


class ProjectionStore(Protocol):
    """The projections inside one open transaction (SQL in production, memory in tests)."""

    async def claim_events(self, stream: str, event_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Record the ids as processed; return those that were not processed before."""

    async def add_units(self, units: Sequence[domain.UnitRecord]) -> list[domain.UnitRecord]:
        """Keep units not seen before (the first registration wins); return those."""

    async def unit_paths(
        self, keys: Collection[domain.FigureKey]
    ) -> dict[domain.FigureKey, UnitPath]:
        """The registered path of each of these units that is registered."""

    async def lock_teams(
        self, candidates: Sequence[domain.TeamRecord]
    ) -> dict[uuid.UUID, domain.TeamRecord]:
        """Lock the teams' stored states until commit and return those that exist."""

    async def save_teams(self, teams: Sequence[domain.TeamRecord]) -> None: ...

    async def add_figures(
        self,
        deltas: Mapping[domain.FigureKey, domain.FigureDelta],
        report: Collection[domain.FigureKey],
    ) -> dict[domain.FigureKey, int]:
        """Add the deltas; return `direct_teams` after the addition for the `report` keys."""

    async def direct_history(
        self, keys: Collection[domain.FigureKey]
    ) -> dict[domain.FigureKey, dict[date, int]]:
        """Each unit's count of attached teams as changes by day (days without one left out)."""

    async def add_history(self, deltas: Mapping[domain.DayKey, domain.FigureDelta]) -> None:
        """Add the dated changes (HISTORY_COUNTERS) per unit and day."""

    async def add_support(
        self,
        by_category: Mapping[domain.SupportKey, domain.SupportDelta],
        by_month: Mapping[domain.SupportKey, domain.SupportDelta],
        by_day: Mapping[domain.SupportDayKey, domain.SupportDelta],
    ) -> None: ...

    async def team_support(
        self, team_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, dict[domain.TeamSupportKey, domain.SupportDelta]]:
        """The support stored for each of these (locked) teams, per day and category."""

    async def add_team_support(
        self, deltas: Mapping[domain.TeamSupportKey, domain.SupportDelta]
    ) -> None:
        """Add each team's support per day and category."""

    async def add_team_months(self, team_months: Collection[tuple[uuid.UUID, str]]) -> None:
        """Remember that each team recorded support in each month (kept once)."""

    async def save_targets(self, targets: Sequence[domain.TargetRecord]) -> None:
        """Keep each target unless the stored one of its unit has an equal or higher version."""

    async def announce(self, changed: Collection[domain.FigureKey]) -> None:
        """Tell live readers which figures changed, once the transaction commits."""
