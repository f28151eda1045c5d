"""Official units of both editions, read from vietnam-provinces, as the registry's Units.

Each province comes with its whole subtree, parents before children, so a province can
be registered in one transaction that its foreign keys accept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from services.registry.adapters.coordinates import Centre
from services.registry.domain import Unit, normalize_text, official_code
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
