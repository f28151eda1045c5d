"""Official units of both editions, and the reform's crosswalk, read from vietnam-provinces.

Each province comes with its whole subtree, parents before children, so a province can
be registered in one transaction that its foreign keys accept, together with the
crosswalk rows that touch it (legacy → 2025, as the government published them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from services.registry.adapters.coordinates import Centre
from services.registry.domain import Unit, normalize_text, official_code
from services.registry.placements import Link
from shared.contracts.units import Edition, Level


@dataclass(frozen=True)
class ProvinceUnits:
    code: str
    name: str
    # The province first, then its districts (legacy), then its communes.
    units: tuple[Unit, ...]


class UnknownProvinceError(ValueError):
    """A province code that the edition does not have."""


def province_code(raw: str) -> str:
    """A province code as typed ("1", "01", "15") in its registry form (two digits)."""
    if not raw.strip().isdigit():
        raise UnknownProvinceError(f"a province code is a number; got {raw!r}")
    return official_code("province", int(raw))


def _unit(
    edition: Edition, code: str, name: str, level: Level, kind: str, parent: Unit | None
) -> Unit:
    return Unit(
        edition=edition,
        code=code,
        name=normalize_text(name),
        level=level,
        kind=kind,
        parent_code=None if parent is None else parent.code,
        path=(code,) if parent is None else (*parent.path, code),
    )


def _edition_2025() -> list[ProvinceUnits]:
    from vietnam_provinces import Province, Ward

    wards = defaultdict(list)
    for ward in Ward.iter_all():
        wards[ward.province_code].append(ward)
    found = []
    for province in Province.iter_all():
        top = _unit(
            "2025",
            official_code("province", province.code.value),
            province.name,
            "province",
            province.division_type.value,
            None,
        )
        communes = [
            _unit(
                "2025",
                official_code("commune", ward.code.value),
                ward.name,
                "commune",
                ward.division_type.value,
                top,
            )
            for ward in wards[province.code]
        ]
        found.append(ProvinceUnits(top.code, top.name, (top, *communes)))
    return found


def _edition_legacy() -> list[ProvinceUnits]:
    from vietnam_provinces.legacy import District, Province, Ward

    districts = defaultdict(list)
    for district in District.iter_all():
        districts[district.province_code].append(district)
    wards = defaultdict(list)
    for ward in Ward.iter_all():
        wards[ward.district_code].append(ward)
    found = []
    for province in Province.iter_all():
        top = _unit(
            "legacy",
            official_code("province", province.code.value),
            province.name,
            "province",
            province.division_type.value,
            None,
        )
        middle: list[Unit] = []
        bottom: list[Unit] = []
        for district in districts[province.code]:
            unit = _unit(
                "legacy",
                official_code("district", district.code.value),
                district.name,
                "district",
                district.division_type.value,
                top,
            )
            middle.append(unit)
            bottom.extend(
                _unit(
                    "legacy",
                    official_code("commune", ward.code.value),
                    ward.name,
                    "commune",
                    ward.division_type.value,
                    unit,
                )
                for ward in wards[district.code]
            )
        found.append(ProvinceUnits(top.code, top.name, (top, *middle, *bottom)))
    return found


def official_units(edition: Edition, provinces: Sequence[str] | None = None) -> list[ProvinceUnits]:
    """Every province of the edition with its subtree, or only the provinces named."""
    everything = _edition_2025() if edition == "2025" else _edition_legacy()
    if not provinces:
        return everything
    by_code = {p.code: p for p in everything}
    wanted = list(dict.fromkeys(province_code(raw) for raw in provinces))
    unknown = [code for code in wanted if code not in by_code]
    if unknown:
        raise UnknownProvinceError(
            f"edition {edition} has no province {', '.join(unknown)}; "
            f"its codes are {', '.join(sorted(by_code))}"
        )
    return [by_code[code] for code in wanted]


def with_centres(
    provinces: Sequence[ProvinceUnits], centres: Mapping[tuple[Level, str], Centre]
) -> list[ProvinceUnits]:
    """The same units, each with its centre when `centres` (by level and code) has one."""

    def placed(unit: Unit) -> Unit:
        centre = centres.get((unit.level, unit.code))
        return unit if centre is None else replace(unit, lat=centre[0], lon=centre[1])

    return [replace(p, units=tuple(placed(u) for u in p.units)) for p in provinces]


def official_links(edition: Edition, provinces: Sequence[str]) -> dict[str, list[Link]]:
    """The crosswalk rows touching each of `provinces` (codes of `edition`), per province.

    Province rows and commune rows: for a legacy province the links out of it and its
    communes, for a 2025 province the links into it and its communes. A commune that
    went into several 2025 communes has one row each, `partly` as the table marks it.
    """
    from vietnam_provinces._province_conversion_2025 import OLD_TO_NEW as PROVINCES
    from vietnam_provinces._ward_conversion_2025 import OLD_TO_NEW as WARDS

    wanted = set(provinces)
    found: dict[str, list[Link]] = {code: [] for code in provinces}

    def keep(link: Link, old_province: int, new_province: int) -> None:
        side = old_province if edition == "legacy" else new_province
        code = official_code("province", side)
        if code in wanted:
            found[code].append(link)

    for old_code, province_entry in PROVINCES.items():
        for new in province_entry.new_provinces:
            link = Link(
                "province", official_code("province", old_code), official_code("province", new.code)
            )
            keep(link, old_code, new.code)
    for ward_entry in WARDS.values():
        old = ward_entry.old_ward
        for new_ward in ward_entry.new_wards:
            link = Link(
                "commune",
                official_code("commune", old.code),
                official_code("commune", new_ward.code),
                partly=old.is_partly_merged,
            )
            keep(link, old.province_code, new_ward.province_code)
    return found
