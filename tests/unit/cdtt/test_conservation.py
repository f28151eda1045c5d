"""`cdtt check`'s conservation rule: legacy provinces' teams, grouped by the crosswalk, are all
counted (placed or unplaced) in the 2025 provinces they went into."""

from __future__ import annotations

from cdtt.ops.check import conservation
from services.aggregator.adapters.audit import Figures
from services.aggregator.domain import FigureKey
from services.registry.adapters.recount import RecountedTeam, RegistryRecount

# Quảng Nam (49) and Đà Nẵng (48) became Đà Nẵng (48); Yên Bái (15) and Lào Cai (10), Lào Cai (15).
LINKS = [("48", "48"), ("49", "48"), ("15", "15"), ("10", "15")]


def aggregated(**teams: tuple[int, int]) -> Figures:
    figures = Figures()
    for name, (count, members) in teams.items():
        edition, code = name.split("_")
        key = FigureKey("2025" if edition == "new" else "legacy", code)
        figures.units.add(key)
        figures.add(key, teams=count, members=members)
    return figures


def test_merged_provinces_are_conserved_net_of_teams_registered_in_2025() -> None:
    home = RecountedTeam("2025", "commune", ("48", "20194"), 4)
    recount = RegistryRecount(units=[], active_teams=[home], province_links=LINKS)
    figures = aggregated(
        legacy_48=(3, 30),
        legacy_49=(376, 2000),
        new_48=(380, 2034),
        legacy_15=(198, 1287),
        legacy_10=(0, 0),
        new_15=(198, 1287),
    )
    assert conservation(recount, figures) == []


def test_a_team_lost_between_the_maps_is_named() -> None:
    recount = RegistryRecount(units=[], active_teams=[], province_links=LINKS)
    figures = aggregated(
        legacy_48=(3, 30),
        legacy_49=(376, 2000),
        new_48=(378, 2029),
        legacy_15=(198, 1287),
        legacy_10=(0, 0),
        new_15=(198, 1287),
    )
    assert conservation(recount, figures) == [
        "conservation legacy 48/49 → 2025 48: "
        "legacy teams/members 379/2030, counted in 2025 378/2029"
    ]


def test_a_group_whose_2025_province_is_not_loaded_is_left_out() -> None:
    recount = RegistryRecount(units=[], active_teams=[], province_links=LINKS)
    assert conservation(recount, aggregated(legacy_15=(198, 1287))) == []
