"""`cdtt check`'s support recount agrees with the aggregator's figures for a legacy team
placed in 2025: its support counts on its own map and where the registry places it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

from cdtt.ops.check import add_support, differences
from services.activity.adapters.recount import SupportSum
from services.aggregator.adapters.audit import Figures
from services.aggregator.domain import FigureDelta, FigureKey
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import TeamCreated
from shared.contracts.events.registry import Placement
from shared.contracts.streams import REGISTRY_EVENTS
from shared.contracts.units import Edition
from tests.unit.aggregator.fakes import (
    InMemoryProjectionStore,
    support_recorded,
    team_event,
    unit_registered,
)

PATH = ("15", "136", "04390")
UNITS = [
    unit_registered(("15",), "province"),
    unit_registered(("15", "136"), "district"),
    unit_registered(PATH, "commune"),
    unit_registered(("15",), "province", edition="2025"),
    unit_registered(("15", "04390"), "commune", edition="2025"),
]


def aggregated(team: uuid.UUID) -> Figures:
    store = InMemoryProjectionStore()
    placed = Placement(edition="2025", unit_path=("15", "04390"), unit_level="commune")
    events = [
        *UNITS,
        support_recorded(team, PATH, residents=3, day=date(2025, 8, 1)),
        team_event(
            TeamCreated, team, PATH, "commune", version=1, member_count=2, placements=(placed,)
        ),
    ]
    asyncio.run(apply_batch(store, REGISTRY_EVENTS, events))
    # Support only: teams and units are the registry's part of the recount.
    return Figures(
        {
            key: FigureDelta(
                support_events=row.support_events, support_residents=row.support_residents
            )
            for key, row in store.figures.items()
            if row.support_events
        },
        {k: v for k, v in store.by_category.items() if v.events},
        {k: v for k, v in store.by_month.items() if v.events},
    )


def recounted(team: uuid.UUID, editions: tuple[Edition, ...]) -> Figures:
    figures = Figures()
    sums = [SupportSum("legacy", PATH, "vneid", "2025-08", 1, 3, team_id=team)]
    add_support(sums, figures, {team: [("2025", ("15", "04390"))]}, editions)
    return figures


def test_support_is_recounted_where_the_team_is_placed_as_the_figures_count_it() -> None:
    team = uuid.uuid4()
    assert differences(recounted(team, ("2025", "legacy")), aggregated(team)) == []
    only_2025 = recounted(team, ("2025",))
    assert FigureKey("legacy", "15") not in only_2025.counters
    assert only_2025.counters[FigureKey("2025", "04390")].support_residents == 3
