"""How figures are served: JSON shape per level and edition, CSV columns, live events, views."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from services.aggregator.adapters.live import LiveUpdate
from services.aggregator.domain import NATIONAL, FigureDelta, FigureKey, SupportDelta, UnitFigures
from services.aggregator.entrypoints.http import live_event
from services.aggregator.entrypoints.schemas import csv_header, csv_row, in_view, unit_coverage
from shared.contracts.events.activity import OUTCOME_KINDS
from shared.contracts.units import Edition, Level

AS_OF = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def figures(
    edition: Edition, path: tuple[str, ...], level: Level | None, **counters: int
) -> UnitFigures:
    code = path[-1] if path else NATIONAL
    return UnitFigures(
        FigureKey(edition, code), f"Đơn vị {code}", level, path, FigureDelta(**counters)
    )


def test_coverage_has_one_entry_per_level_below_the_unit_in_its_edition() -> None:
    legacy = unit_coverage(figures("legacy", ("15",), "province"), AS_OF, 0)
    new = unit_coverage(figures("2025", ("15",), "province"), AS_OF, 0)
    national = unit_coverage(figures("legacy", (), None), AS_OF, 0)
    village = unit_coverage(
        figures("legacy", ("15", "136", "04378", "04378-001"), "village"), AS_OF, 0
    )

    assert list(legacy.coverage) == ["district", "commune", "village"]
    assert list(new.coverage) == ["commune", "village"]
    assert list(national.coverage) == ["province", "district", "commune", "village"]
    assert village.coverage == {}
    assert (village.members_trained, village.members_trained_share) == (0, None)
    assert (national.code, national.level, national.has_team) == (None, "national", None)


def test_a_unit_reads_its_counters_and_every_category() -> None:
    unit = figures(
        "legacy",
        ("15", "136"),
        "district",
        teams=3,
        members=11,
        members_trained=4,
        direct_teams=1,
        covered_commune=2,
        total_commune=25,
        support_events=4,
        support_residents=30,
        vneid_activations=9,
        payment_accounts=2,
    )
    unit.by_category = {
        "vneid": SupportDelta(3, 20, vneid_activations=9),
        "cashless_payment": SupportDelta(1, 10, payment_accounts=2),
    }
    unit.by_month = {
        "2024-06": SupportDelta(1, 5, payment_accounts=2),
        "2024-05": SupportDelta(3, 25, vneid_activations=9),
    }

    body = unit_coverage(unit, AS_OF, 12).model_dump(mode="json")

    assert (body["has_team"], body["teams"], body["members"]) == (True, 3, 11)
    assert (body["members_trained"], body["members_trained_share"]) == (4, 0.3636)
    assert body["coverage"]["commune"] == {"covered": 2, "total": 25}
    none = dict.fromkeys(OUTCOME_KINDS, 0)
    assert body["support"]["outcomes"] == none | {"vneid_activations": 9, "payment_accounts": 2}
    assert body["support"]["by_category"]["vneid"] == {
        "events": 3,
        "residents": 20,
        "outcomes": none | {"vneid_activations": 9},
    }
    assert body["support"]["by_category"]["other"] == {
        "events": 0,
        "residents": 0,
        "outcomes": none,
    }
    assert body["support"]["by_month"]["2024-06"]["outcomes"] == none | {"payment_accounts": 2}
    assert list(body["support"]["by_category"]) == [
        "vneid",
        "public_services",
        "cashless_payment",
        "ecommerce",
        "digital_skills",
        "online_safety",
        "other",
    ]
    assert list(body["support"]["by_month"]) == ["2024-05", "2024-06"]
    assert (body["as_of"], body["lag_ms"]) == ("2026-11-28T10:00:00Z", 12)


def test_csv_columns_follow_the_levels_below_the_rows() -> None:
    header = csv_header("legacy", "district")
    row = csv_row(
        figures(
            "legacy",
            ("15", "136"),
            "district",
            teams=2,
            covered_village=1,
            total_village=4,
            ecommerce_accounts=5,
        ),
        header,
    )

    assert header[:7] == ["edition", "code", "name", "level", "has_team", "teams", "members"]
    assert header[7:11] == ["commune_covered", "commune_total", "village_covered", "village_total"]
    assert "district_covered" not in header
    values = dict(zip(header, row, strict=True))
    assert (values["has_team"], values["teams"], values["village_total"]) == ("no", 2, 4)
    assert values["vneid_residents"] == 0
    trained = header.index("members_trained")
    assert header[trained - 5 : trained] == [f"outcomes_{kind}" for kind in OUTCOME_KINDS]
    # Columns added since go after it, targets last: empty cells for a unit without one.
    assert header[trained + 1 : trained + 6] == [
        "members_trained_share",
        "target_due",
        "target_covered_pct_commune",
        "actual_covered_pct_commune",
        "progress_covered_pct_commune",
    ]
    assert header[-1] == "progress_outcomes_other_accounts"
    assert values["target_due"] is None
    assert (values["outcomes_ecommerce_accounts"], values["outcomes_other_accounts"]) == (5, 0)
    assert csv_header("2025", "province")[7:11] == [
        "commune_covered",
        "commune_total",
        "village_covered",
        "village_total",
    ]
    assert not any(c.endswith("_covered") for c in csv_header("legacy", None))


def test_a_view_shows_its_unit_and_the_units_directly_under_it() -> None:
    nation = figures("legacy", (), None)
    province = figures("legacy", ("15",), "province")
    district = figures("legacy", ("15", "136"), "district")
    commune = figures("legacy", ("15", "136", "04378"), "commune")

    assert [in_view(f, "") for f in (nation, province, district)] == [True, True, False]
    assert [in_view(f, "136") for f in (province, district, commune)] == [False, True, True]
    assert all(in_view(f, None) for f in (nation, province, district, commune))


def test_a_live_event_names_the_changed_units_and_carries_their_figures() -> None:
    update = LiveUpdate(
        7,
        "legacy",
        (figures("legacy", (), None, teams=1), figures("legacy", ("15",), "province")),
        AS_OF,
        3,
    )

    text = live_event(update)

    lines = text.split("\n")
    assert lines[:2] == ["id: 7", "event: coverage"]
    assert text.endswith("\n\n")
    data = json.loads(lines[2].removeprefix("data: "))
    assert data["codes"] == ["", "15"]
    assert [u["code"] for u in data["units"]] == [None, "15"]
    assert data["units"][0]["teams"] == 1
    assert (data["edition"], data["lag_ms"]) == ("legacy", 3)
