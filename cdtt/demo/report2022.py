"""The 2022 provincial reports as a deterministic plan of writes for `cdtt demo` (no I/O).

The report's figures fix the counts; a seeded RNG fixes everything the report does not say
(village names, members, support work), so the plan, and every Idempotency-Key derived from
it, is the same on every run.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from cdtt.demo.names import person_name, village_names
from shared.contracts.events.activity import CATEGORIES, Category, OutcomeKind
from shared.contracts.events.registry import Role

SEED = 2022
# Support event ids are uuid5 in this namespace: the same event on every run.
SUPPORT_NAMESPACE = uuid.UUID("5d1c0f6e-2022-4c0d-9e61-7c2d5b1a0c22")
MEMBERS_PER_TEAM = (4, 9)  # when a report gives no member count
SUPPORT_PER_TEAM = (1, 5)
CATEGORY_WEIGHTS = (30, 25, 15, 8, 12, 6, 4)  # vneid first: the 2022 campaign's main work
# Members trained on the ministry's platform by its end-November 2022 target: most, not all.
TRAINED_SHARE = 0.7
TRAINING_DAYS = (date(2022, 6, 1), date(2022, 11, 30))
# What a piece of support produced, as a share of the residents helped (low, high), by the
# kind its category opens; other categories now and then open some other account.
OUTCOME_OF_CATEGORY: Mapping[Category, tuple[OutcomeKind, float, float]] = {
    "vneid": ("vneid_activations", 0.6, 1.0),
    "public_services": ("public_service_dossiers", 0.4, 1.0),
    "cashless_payment": ("payment_accounts", 0.3, 0.8),
    "ecommerce": ("ecommerce_accounts", 0.2, 0.7),
}
# The province's target, due when the ministry's was: every commune and 90 % of villages
# covered, every member trained, and a third more VNeID activations than the replay makes.
TARGET_DUE = date(2022, 11, 30)
# The day the report's figures are as of. The repository cites no article for the provincial
# figures; the one dated figure of the period it quotes is the ministry's count "as of
# 26 May 2022" (issue 14), so every province's report is read as of that day.
REPORTED_ON = date(2022, 5, 26)


@dataclass(frozen=True)
class Report:
    """One province's line in the 2022 report (legacy codes)."""

    province: str
    name: str
    teams: int | None = None  # total teams; villages get what districts and communes leave
    villages: int | None = None  # villages with a team, when the report counts them
    members: int | None = None  # total members, when the report counts them
    districts: tuple[str, ...] | None = None  # districts with teams; None: all of them
    headline: str = ""
    # Teams are set up on days drawn between these two (the report's day last).
    teams_from: date = date(2022, 1, 1)
    reported_on: date = REPORTED_ON


REPORTS: tuple[Report, ...] = (
    Report(
        "15",
        "Yên Bái",
        villages=172,
        members=1287,
        districts=("136",),
        headline="1/9 districts, 25/25 communes of Văn Yên, 172 villages, 1,287 members",
    ),
    Report("49", "Quảng Nam", teams=376, headline="376 teams at district, commune, village"),
    Report("20", "Lạng Sơn", teams=1680, headline="about 1,680 teams", teams_from=date(2021, 7, 1)),
)
REPORTS_BY_PROVINCE: Mapping[str, Report] = {report.province: report for report in REPORTS}
ALL_PROVINCES: tuple[str, ...] = tuple(REPORTS_BY_PROVINCE)


@dataclass(frozen=True)
class Unit:
    code: str
    name: str


@dataclass(frozen=True)
class ProvinceTree:
    """The official units of one province as the registry lists them."""

    code: str
    name: str
    districts: tuple[Unit, ...]
    communes: Mapping[str, tuple[Unit, ...]]  # district code -> its communes


@dataclass(frozen=True)
class VillageWrite:
    code: str
    parent_code: str
    name: str
    kind: str


@dataclass(frozen=True)
class TeamWrite:
    unit_code: str
    level: str
    name: str
    established_on: date
    members: tuple[tuple[str, Role], ...]
    # Each member's training day, in `members` order (None: not trained).
    trained_on: tuple[date | None, ...] = ()


@dataclass(frozen=True)
class SupportWrite:
    event_id: uuid.UUID
    unit_code: str
    occurred_on: date
    category: Category
    residents_helped: int
    outcomes: Mapping[OutcomeKind, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ProvincePlan:
    report: Report
    tree: ProvinceTree
    villages: tuple[VillageWrite, ...]
    teams: tuple[TeamWrite, ...]
    support: tuple[SupportWrite, ...] = field(default=())

    @property
    def members(self) -> int:
        return sum(len(team.members) for team in self.teams)

    def teams_at(self, level: str) -> int:
        return sum(1 for team in self.teams if team.level == level)

    def target(self) -> dict[str, object]:
        """The PUT /v1/targets body for the province (a function of the plan alone)."""
        activations = sum(s.outcomes.get("vneid_activations", 0) for s in self.support)
        return {
            "due": TARGET_DUE.isoformat(),
            "covered_pct": {"commune": 100, "village": 90},
            "members_trained_pct": 100,
            "outcomes": {"vneid_activations": -(-activations * 4 // 3)},
        }


class PlanError(ValueError):
    """The registry's units cannot hold what the report says (e.g. units not loaded)."""


def _spread(total: int, bins: int) -> list[int]:
    """`total` split over `bins` as evenly as possible, larger shares first."""
    base, extra = divmod(total, bins)
    return [base + (1 if index < extra else 0) for index in range(bins)]


def _role(index: int, count: int) -> Role:
    # The village (or commune) head leads; one deputy when the team has three or more.
    if index == 0:
        return "leader"
    return "deputy" if index == 1 and count >= 3 else "member"


def _members(rng: random.Random, count: int) -> tuple[tuple[str, Role], ...]:
    return tuple((person_name(rng), _role(index, count)) for index in range(count))


def _support(rng: random.Random, unit_code: str) -> list[SupportWrite]:
    writes = []
    for index in range(rng.randint(*SUPPORT_PER_TEAM)):
        writes.append(
            SupportWrite(
                event_id=uuid.uuid5(SUPPORT_NAMESPACE, f"{unit_code}/{index}"),
                unit_code=unit_code,
                occurred_on=date(2022, 3, 1) + timedelta(days=rng.randrange(300)),
                category=rng.choices(CATEGORIES, weights=CATEGORY_WEIGHTS)[0],
                residents_helped=rng.randint(1, 60),
            )
        )
    return writes


def _trained_on(rng: random.Random, count: int) -> tuple[date | None, ...]:
    first, last = TRAINING_DAYS
    return tuple(
        first + timedelta(days=rng.randrange((last - first).days + 1))
        if rng.random() < TRAINED_SHARE
        else None
        for _ in range(count)
    )


def _established_on(rng: random.Random, report: Report) -> date:
    span = (report.reported_on - report.teams_from).days
    return report.teams_from + timedelta(days=rng.randint(0, span))


def _with_outcomes(rng: random.Random, write: SupportWrite) -> SupportWrite:
    helped = write.residents_helped
    made = OUTCOME_OF_CATEGORY.get(write.category)
    if made is not None:
        kind, low, high = made
        outcomes = {kind: round(helped * rng.uniform(low, high))}
    elif rng.random() < 0.2:
        outcomes = {"other_accounts": rng.randint(1, helped)}
    else:
        outcomes = {}
    return replace(write, outcomes=outcomes)


def plan_province(report: Report, tree: ProvinceTree, seed: int = SEED) -> ProvincePlan:
    """Every write that replays `report` over `tree`; the same for the same inputs."""
    rng = random.Random(f"{seed}/{report.province}")  # noqa: S311 - a reproducible plan
    wanted = report.districts or tuple(district.code for district in tree.districts)
    districts = [district for district in tree.districts if district.code in wanted]
    if len(districts) != len(wanted) or not districts:
        raise PlanError(
            f"{report.name}: districts {', '.join(wanted)} not all in the registry "
            f"(found {len(tree.districts)}); load them with "
            f"`cdtt units load --edition legacy --province {report.province}`"
        )
    communes = [commune for district in districts for commune in tree.communes[district.code]]
    if not communes:
        raise PlanError(f"{report.name}: the registry lists no communes under its districts")
    if report.villages is not None:
        village_count = report.villages
    elif report.teams is not None:
        village_count = report.teams - len(districts) - len(communes)
    else:
        raise PlanError(f"{report.name}: a report needs a team or village count")
    if village_count < 0:
        raise PlanError(f"{report.name}: {report.teams} teams cannot cover its communes")

    villages: list[VillageWrite] = []
    for commune, count in zip(communes, _spread(village_count, len(communes)), strict=True):
        for number, (name, kind) in enumerate(village_names(rng, count), start=1):
            villages.append(VillageWrite(f"{commune.code}-{number:03d}", commune.code, name, kind))

    units = (
        [(district.code, "district", district.name) for district in districts]
        + [(commune.code, "commune", commune.name) for commune in communes]
        + [(village.code, "village", village.name) for village in villages]
    )
    if report.members is not None:
        sizes = _spread(report.members, len(units))
        rng.shuffle(sizes)
    else:
        sizes = [rng.randint(*MEMBERS_PER_TEAM) for _ in units]
    teams = []
    support: list[SupportWrite] = []
    # Training and outcomes draw from their own RNG: the rest of the plan (and every
    # Idempotency-Key of it) stays what it was before they were replayed.
    counted = random.Random(f"{seed}/{report.province}/counted")  # noqa: S311 - reproducible
    # So do the teams' dates (members join on their team's): the main RNG still makes the
    # draw the old date took, so names, members and support stay what they were.
    dated = random.Random(f"{seed}/{report.province}/dated")  # noqa: S311 - reproducible
    for (code, level, name), size in zip(units, sizes, strict=True):
        rng.randrange(240)  # the draw of the old established_on: keeps the plan's sequence
        teams.append(
            TeamWrite(
                unit_code=code,
                level=level,
                name=f"Tổ công nghệ số cộng đồng {name}",
                established_on=_established_on(dated, report),
                members=_members(rng, size),
                trained_on=_trained_on(counted, size),
            )
        )
        support += [_with_outcomes(counted, write) for write in _support(rng, code)]
    return ProvincePlan(report, tree, tuple(villages), tuple(teams), tuple(support))


def reports_for(provinces: Sequence[str]) -> list[Report]:
    unknown = [code for code in provinces if code not in REPORTS_BY_PROVINCE]
    if unknown:
        known = ", ".join(f"{r.province} ({r.name})" for r in REPORTS)
        raise PlanError(f"no 2022 report for province {', '.join(unknown)}; known: {known}")
    return [REPORTS_BY_PROVINCE[code] for code in provinces]
