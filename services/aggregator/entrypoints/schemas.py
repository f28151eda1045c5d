"""The figures as the API serves them (JSON, CSV rows, live events), from projection rows."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.aggregator.adapters.queries import MonthFigures
from services.aggregator.adapters.reporting import ChildReporting
from services.aggregator.domain import (
    NATIONAL_LEVEL,
    SupportDelta,
    UnitFigures,
    levels_below,
    target_progress,
)
from shared.contracts.events.activity import CATEGORIES, OUTCOME_KINDS, Category, OutcomeKind
from shared.contracts.units import Edition, Level
from shared.web.spreadsheet import spreadsheet_cell


class LevelCoverage(BaseModel):
    covered: int = Field(description="units at this level in the subtree with an active team")
    total: int = Field(description="units registered at this level in the subtree")


class SupportFigures(BaseModel):
    events: int
    residents: int
    outcomes: dict[OutcomeKind, int] = Field(
        description="what the support produced, every kind (zeros included): "
        "VNeID activations, public-service dossiers, payment, e-commerce and other accounts"
    )


class Support(SupportFigures):
    by_category: dict[Category, SupportFigures] = Field(
        description="every category, zeros included"
    )
    by_month: dict[str, SupportFigures] = Field(
        description='months with support, "YYYY-MM" (of occurred_on), oldest first'
    )


class Unplaced(BaseModel):
    teams: int = Field(description="active legacy teams waiting for a placement on this map")
    members: int


class TargetOut(BaseModel):
    figure: str = Field(
        description='what is aimed at: "covered_pct.<level>", "members_trained_pct" or '
        '"outcomes.<kind>"'
    )
    target: float
    actual: float | None = Field(
        description="the figure now (percent for *_pct); null when there is nothing to "
        "measure yet (no units at that level, no members)"
    )
    progress: float | None = Field(
        description="actual / target, 4 places (1 = reached); null when actual is null or "
        "the target is 0"
    )
    due: date | None


class CameFrom(BaseModel):
    code: str = Field(description="legacy unit code")
    name: str | None = Field(description="null while the legacy unit is not registered here")
    level: Level | None
    partly: bool = Field(description="only part of the legacy unit went into this one")


class UnitCoverage(BaseModel):
    """The figures of one unit's subtree, or of a whole edition (code null)."""

    edition: Edition
    code: str | None = Field(description="null for the national figures")
    name: str
    level: Level | Literal["national"]
    path: list[str] = Field(description="unit codes, province first, the unit itself last")
    has_team: bool | None = Field(description="an active team is attached to this very unit")
    teams: int = Field(description="active teams attached anywhere in the subtree")
    members: int = Field(description="current members of those teams")
    members_trained: int = Field(description="those members with a trained_on date")
    members_trained_share: float | None = Field(
        description="members_trained / members, 0 to 1; null when there are no members"
    )
    unplaced: Unplaced | None = Field(
        default=None,
        description="2025 provinces and nation: of `teams`, those from split or unmapped "
        "legacy communes that wait for a publisher of the province to place them",
    )
    coverage: dict[Level, LevelCoverage] = Field(description="one entry per level below the unit")
    came_from: list[CameFrom] | None = Field(
        default=None,
        description="GET /v1/coverage/{code} of a 2025 unit: the legacy units it came from "
        "(the reform's official crosswalk; a carried village: its legacy village); null "
        "elsewhere",
    )
    support: Support
    targets: list[TargetOut] = Field(
        default_factory=list,
        description="the unit's target (set in the registry, PUT /v1/targets/{code}), part "
        "by part, against its figures; empty when none is set",
    )
    as_of: datetime
    lag_ms: int | None
    as_of_date: date | None = Field(
        default=None,
        description="the day the figures stand at (end of day, by business dates) when the "
        "request named `as_of`; null: live figures",
    )


class NationalCoverage(UnitCoverage):
    items: list[UnitCoverage] = Field(description="one row per province, by code")


class ChildrenCoverage(BaseModel):
    edition: Edition
    parent: str
    items: list[UnitCoverage]
    as_of: datetime
    lag_ms: int | None
    as_of_date: date | None = None


class SeriesChange(BaseModel):
    """The difference from the month before, for each figure of the month."""

    teams: int
    members: int
    members_trained: int
    coverage: dict[Level, int] = Field(description="covered units, per level")
    support_events: int
    support_residents: int


class SeriesMonth(BaseModel):
    month: str = Field(description='"YYYY-MM"')
    teams: int = Field(description="active teams in the subtree at the end of the month")
    members: int
    members_trained: int
    coverage: dict[Level, LevelCoverage] = Field(
        description="covered units at the end of the month, of today's map's totals"
    )
    support: SupportFigures = Field(description="support recorded in the month (occurred_on)")
    change: SeriesChange


class CoverageSeries(BaseModel):
    """One row per month of a unit's (or a nation's) figures by business dates."""

    edition: Edition
    code: str | None = Field(description="null for the national figures")
    name: str
    level: Level | Literal["national"]
    path: list[str]
    months: list[SeriesMonth]


def coverage_series(unit: UnitFigures, months: Sequence[MonthFigures]) -> CoverageSeries:
    """`months` with the month before the first: each row's change is against the one before."""
    levels = unit.coverage_levels()
    rows = []
    for before, now in itertools.pairwise(months):
        counters, previous = now.counters, before.counters
        rows.append(
            SeriesMonth(
                month=now.month,
                teams=counters.teams,
                members=counters.members,
                members_trained=counters.members_trained,
                coverage={
                    level: LevelCoverage(
                        covered=counters.covered(level), total=counters.total(level)
                    )
                    for level in levels
                },
                support=_split(now.support),
                change=SeriesChange(
                    teams=counters.teams - previous.teams,
                    members=counters.members - previous.members,
                    members_trained=counters.members_trained - previous.members_trained,
                    coverage={
                        level: counters.covered(level) - previous.covered(level) for level in levels
                    },
                    support_events=now.support.events - before.support.events,
                    support_residents=now.support.residents - before.support.residents,
                ),
            )
        )
    return CoverageSeries(
        edition=unit.key.edition,
        code=None if unit.key.is_national else unit.key.code,
        name=unit.name,
        level=unit.level or NATIONAL_LEVEL,
        path=list(unit.path),
        months=rows,
    )


def _split(figures: SupportDelta) -> SupportFigures:
    return SupportFigures(
        events=figures.events, residents=figures.residents, outcomes=figures.outcomes()
    )


def unit_coverage(
    figures: UnitFigures, as_of: datetime, lag_ms: int | None, as_of_date: date | None = None
) -> UnitCoverage:
    counters = figures.counters
    return UnitCoverage(
        edition=figures.key.edition,
        code=None if figures.key.is_national else figures.key.code,
        name=figures.name,
        level=figures.level or NATIONAL_LEVEL,
        path=list(figures.path),
        has_team=figures.has_team,
        teams=counters.teams,
        members=counters.members,
        members_trained=counters.members_trained,
        members_trained_share=trained_share(counters.members_trained, counters.members),
        unplaced=(
            Unplaced(teams=counters.unplaced_teams, members=counters.unplaced_members)
            if figures.key.edition == "2025" and figures.level in (None, "province")
            else None
        ),
        coverage={
            level: LevelCoverage(covered=counters.covered(level), total=counters.total(level))
            for level in figures.coverage_levels()
        },
        support=Support(
            events=counters.support_events,
            residents=counters.support_residents,
            outcomes=counters.outcomes(),
            by_category={c: _split(s) for c, s in figures.category_figures().items()},
            by_month={m: _split(s) for m, s in sorted(figures.by_month.items())},
        ),
        targets=[
            TargetOut(
                figure=part.figure,
                target=part.target,
                actual=part.actual,
                progress=part.progress,
                due=part.due,
            )
            for part in (
                target_progress(figures.target, counters) if figures.target is not None else []
            )
        ],
        as_of=as_of,
        lag_ms=lag_ms,
        as_of_date=as_of_date,
    )


def trained_share(trained: int, members: int) -> float | None:
    """Trained members' share, rounded to 4 places; none without members (not 0)."""
    return round(trained / members, 4) if members else None


def in_view(figures: UnitFigures, parent: str | None) -> bool:
    """Whether a view of `parent` shows these figures: the unit itself or a row under it.

    `parent` None: every unit; "": the national view (the nation and its provinces).
    """
    if parent is None:
        return True
    if parent == "":
        return figures.key.is_national or len(figures.path) == 1
    return figures.key.code == parent or figures.path[-2:-1] == (parent,)


def child_level(edition: Edition, parent_level: Level | None) -> Level | None:
    levels = levels_below(edition, parent_level)
    return levels[0] if levels else None


def csv_header(edition: Edition, rows_level: Level | None) -> list[str]:
    """Columns of a children table whose rows are at `rows_level` (None: a village's, empty)."""
    levels = levels_below(edition, rows_level) if rows_level else ()
    return [
        "edition",
        "code",
        "name",
        "level",
        "has_team",
        "teams",
        "members",
        *(f"{level}_{part}" for level in levels for part in ("covered", "total")),
        "support_events",
        "support_residents",
        *(f"{category}_{part}" for category in CATEGORIES for part in ("events", "residents")),
        *(f"outcomes_{kind}" for kind in OUTCOME_KINDS),
        # New columns go last, so existing readers' column positions stay.
        "members_trained",
        "members_trained_share",
        "target_due",
        *(
            f"{part}_{figure}"
            for figure in target_figures(levels)
            for part in ("target", "actual", "progress")
        ),
    ]


def target_figures(levels: Sequence[Level]) -> list[str]:
    """Every part a target of a unit with these levels below it may have, as CSV names."""
    return [
        *(f"covered_pct_{level}" for level in levels),
        "members_trained_pct",
        *(f"outcomes_{kind}" for kind in OUTCOME_KINDS),
    ]


def csv_row(figures: UnitFigures, header: Sequence[str]) -> list[object]:
    counters = figures.counters
    values: dict[str, object] = {
        "edition": figures.key.edition,
        "code": figures.key.code,
        "name": figures.name,
        "level": figures.level or NATIONAL_LEVEL,
        "has_team": "yes" if figures.has_team else "no",
        "teams": counters.teams,
        "members": counters.members,
        "members_trained": counters.members_trained,
        "support_events": counters.support_events,
        "support_residents": counters.support_residents,
    }
    for name in header:
        if name.endswith(("_covered", "_total")):
            level, part = name.rsplit("_", 1)
            values[name] = getattr(counters, f"{part}_{level}")
    for category, split in figures.category_figures().items():
        values[f"{category}_events"] = split.events
        values[f"{category}_residents"] = split.residents
    for kind, count in counters.outcomes().items():
        values[f"outcomes_{kind}"] = count
    values["members_trained_share"] = trained_share(counters.members_trained, counters.members)
    if figures.target is not None:
        values["target_due"] = figures.target.due
        for aim in target_progress(figures.target, counters):
            figure = aim.figure.replace(".", "_")
            values[f"target_{figure}"] = aim.target
            values[f"actual_{figure}"] = aim.actual
            values[f"progress_{figure}"] = aim.progress
    # Names come from provincial systems: never let one run as a spreadsheet formula.
    return [spreadsheet_cell(values.get(name)) for name in header]


class SilentTeamOut(BaseModel):
    team_id: uuid.UUID
    unit_code: str = Field(description="the unit the team sits on")


class ReportingRow(BaseModel):
    code: str
    name: str
    level: Level
    active_teams: int = Field(description="active teams anywhere in the unit's subtree")
    reporting_teams: int = Field(
        description="those that recorded at least one support event with occurred_on in the month"
    )
    reporting_rate: float | None = Field(
        description="reporting_teams / active_teams, 0 to 1 (4 places); null when no team "
        "is active (nothing was expected: not 0)"
    )
    silent_teams: int = Field(description="active_teams - reporting_teams")
    silent: list[SilentTeamOut] | None = Field(
        description="at commune level and below: the silent teams and their units; else null"
    )


class Reporting(BaseModel):
    edition: Edition
    parent: str | None = Field(description="null: the provinces")
    period: str = Field(description='"YYYY-MM"')
    items: list[ReportingRow]


# Silent teams are listed where a provincial officer can call them: communes and villages.
_SILENT_LEVELS = frozenset({"commune", "village"})


def reporting_row(row: ChildReporting) -> ReportingRow:
    return ReportingRow(
        code=row.code,
        name=row.name,
        level=row.level,
        active_teams=row.active_teams,
        reporting_teams=row.reporting_teams,
        reporting_rate=(
            round(row.reporting_teams / row.active_teams, 4) if row.active_teams else None
        ),
        silent_teams=row.active_teams - row.reporting_teams,
        silent=(
            [SilentTeamOut(team_id=s.team_id, unit_code=s.unit_code) for s in row.silent]
            if row.level in _SILENT_LEVELS
            else None
        ),
    )


REPORTING_CSV_HEADER = (
    "edition",
    "period",
    "code",
    "name",
    "level",
    "active_teams",
    "reporting_teams",
    "reporting_rate",
    "silent_teams",
    "silent",
)


def reporting_csv_row(report: Reporting, row: ReportingRow) -> list[object]:
    """One unit's reporting; `silent` lists "unit_code team_id" pairs, "; " between them."""
    silent = (
        None
        if row.silent is None
        else "; ".join(f"{team.unit_code} {team.team_id}" for team in row.silent)
    )
    values = (
        report.edition,
        report.period,
        row.code,
        row.name,
        row.level,
        row.active_teams,
        row.reporting_teams,
        row.reporting_rate,
        row.silent_teams,
        silent,
    )
    return [spreadsheet_cell(value) for value in values]
