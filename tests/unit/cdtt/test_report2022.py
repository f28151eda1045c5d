"""The 2022 replay plan: the report's figures, the same writes on every run, valid requests."""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter
from datetime import date

import pytest
from vietnam_provinces.legacy import District, Ward

from cdtt.demo.report2022 import (
    REPORTS,
    REPORTS_BY_PROVINCE,
    TARGET_DUE,
    PlanError,
    ProvincePlan,
    ProvinceTree,
    Report,
    Unit,
    plan_province,
    reports_for,
)
from services.registry.entrypoints.schemas import SetTargetRequest
from shared.contracts.events.activity import OUTCOMES_PER_RESIDENT


@functools.cache
def official_tree(province: str) -> ProvinceTree:
    """The legacy units the registry loads for `province`, as its API lists them."""
    districts = sorted(
        (d for d in District.iter_all() if int(d.province_code) == int(province)),
        key=lambda d: int(d.code),
    )
    communes: dict[str, tuple[Unit, ...]] = {}
    for district in districts:
        wards = sorted(
            (w for w in Ward.iter_all() if int(w.district_code) == int(district.code)),
            key=lambda w: int(w.code),
        )
        communes[f"{int(district.code):03d}"] = tuple(
            Unit(f"{int(w.code):05d}", w.name) for w in wards
        )
    return ProvinceTree(
        code=province,
        name=REPORTS_BY_PROVINCE[province].name,
        districts=tuple(Unit(f"{int(d.code):03d}", d.name) for d in districts),
        communes=communes,
    )


def plan(province: str) -> ProvincePlan:
    return plan_province(REPORTS_BY_PROVINCE[province], official_tree(province))


def test_yen_bai_is_the_report() -> None:
    yen_bai = plan("15")
    assert len(yen_bai.tree.districts) == 9
    assert yen_bai.teams_at("district") == 1
    assert [t.unit_code for t in yen_bai.teams if t.level == "district"] == ["136"]
    assert yen_bai.teams_at("commune") == 25 == len(yen_bai.tree.communes["136"])
    assert yen_bai.teams_at("village") == 172 == len(yen_bai.villages)
    assert yen_bai.members == 1287
    assert {v.parent_code for v in yen_bai.villages} == {
        c.code for c in yen_bai.tree.communes["136"]
    }


def test_quang_nam_and_lang_son_team_counts_and_the_total() -> None:
    quang_nam, lang_son = plan("49"), plan("20")
    assert len(quang_nam.teams) == 376
    assert {quang_nam.teams_at(level) > 0 for level in ("district", "commune", "village")} == {True}
    assert len(lang_son.teams) == 1680
    total = sum(len(plan(r.province).teams) for r in REPORTS)
    assert 2200 <= total < 2300  # "nearly 2,300 teams"


def test_the_plan_is_the_same_on_every_run() -> None:
    assert plan("15") == plan("15")
    assert plan("20") == plan("20")
    assert plan_province(REPORTS[0], official_tree("15"), seed=7) != plan("15")


@pytest.mark.parametrize("province", ["15", "49", "20"])
def test_every_write_is_one_the_registry_accepts(province: str) -> None:
    writes = plan(province)
    codes = [v.code for v in writes.villages]
    assert len(set(codes)) == len(codes)
    assert all(v.code.startswith(v.parent_code + "-") for v in writes.villages)
    assert len({t.unit_code for t in writes.teams}) == len(writes.teams)  # one team per unit
    for team in writes.teams:
        roles = Counter(role for _, role in team.members)
        assert roles["leader"] == 1
        assert 1 <= len(team.members) <= 500
        for name, _ in team.members:
            assert unicodedata.normalize("NFC", name) == name
            assert 0 < len(name) <= 200
    events = [s.event_id for s in writes.support]
    assert len(set(events)) == len(events)
    assert all(1 <= s.residents_helped <= 10_000 for s in writes.support)
    assert {s.unit_code for s in writes.support} <= {t.unit_code for t in writes.teams}


def test_units_not_loaded_are_named_with_the_command_that_loads_them() -> None:
    empty = ProvinceTree(code="15", name="Yên Bái", districts=(), communes={})
    with pytest.raises(PlanError, match="cdtt units load --edition legacy --province 15"):
        plan_province(REPORTS_BY_PROVINCE["15"], empty)


def test_a_report_with_more_units_than_teams_is_refused() -> None:
    with pytest.raises(PlanError, match="cannot cover"):
        plan_province(Report("20", "Lạng Sơn", teams=10), official_tree("20"))
    with pytest.raises(PlanError, match="no 2022 report for province 01"):
        reports_for(["15", "01"])


@pytest.mark.parametrize("province", ["15", "49", "20"])
def test_training_outcomes_and_the_target_are_plausible_and_within_the_rules(
    province: str,
) -> None:
    writes = plan(province)
    days = [day for team in writes.teams for day in team.trained_on]
    assert len(days) == writes.members
    trained = [day for day in days if day is not None]
    assert 0.6 < len(trained) / len(days) < 0.8  # most members, not all, by the deadline
    assert all(date(2022, 6, 1) <= day <= TARGET_DUE for day in trained)
    assert all(
        0 <= count <= s.residents_helped * OUTCOMES_PER_RESIDENT
        for s in writes.support
        for count in s.outcomes.values()
    )
    activations = sum(s.outcomes.get("vneid_activations", 0) for s in writes.support)
    helped = sum(s.residents_helped for s in writes.support)
    assert 0 < activations < helped
    target = SetTargetRequest.model_validate(writes.target())
    assert target.outcomes["vneid_activations"] > activations
    assert (target.due, target.members_trained_pct) == (TARGET_DUE, 100)


def test_teams_are_dated_up_to_the_report_day_lang_son_from_july_2021() -> None:
    for report in REPORTS:
        days = [team.established_on for team in plan(report.province).teams]
        assert report.teams_from <= min(days)
        assert max(days) <= report.reported_on
        assert len({(day.year, day.month) for day in days}) >= 4  # spread over months
    assert REPORTS_BY_PROVINCE["20"].teams_from == date(2021, 7, 1)
    assert {REPORTS_BY_PROVINCE[p].teams_from for p in ("15", "49")} == {date(2022, 1, 1)}
    # Training comes after joining (members join on their team's day).
    for report in REPORTS:
        for team in plan(report.province).teams:
            assert all(day is None or day >= team.established_on for day in team.trained_on)
