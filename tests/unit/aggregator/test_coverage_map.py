"""unit.registered's coordinates (schema 2, schema 1 still read) and the map's compact body."""

from __future__ import annotations

import gzip
import json
import random

import orjson

from services.aggregator.adapters.queries import MapPoint
from services.aggregator.entrypoints.coverage_map import FIELDS, map_body
from services.aggregator.projections import unit_record
from shared.contracts.events import UnitRegistered, decode_event
from tests.unit.aggregator.fakes import unit_registered

MAU_A = (21.8958, 104.701)


def test_unit_registered_carries_the_centre_since_schema_2() -> None:
    event = unit_registered(("15", "136", "04375"), "commune", name="Xã Mậu A", centre=MAU_A)
    decoded = decode_event(event.to_json())
    assert isinstance(decoded, UnitRegistered)
    assert decoded.schema_version >= 2
    record = unit_record(decoded)
    assert (record.lat, record.lon) == MAU_A


def test_a_schema_1_unit_registered_reads_as_a_unit_without_coordinates() -> None:
    event = json.loads(unit_registered(("15", "136", "04375"), "commune").to_json())
    event["schema_version"] = 1
    del event["payload"]["lat"], event["payload"]["lon"], event["payload"]["came_from"]
    decoded = decode_event(json.dumps(event))
    assert isinstance(decoded, UnitRegistered)
    record = unit_record(decoded)
    assert (record.code, record.lat, record.lon) == ("04375", None, None)


def national_points(count: int) -> list[MapPoint]:
    """`count` communes spread over Viet Nam, names as long as real ones, a third covered."""
    rng = random.Random(16)
    return [
        MapPoint(
            code=f"{n:05d}",
            name=f"Phường Nguyễn Văn Cừ {n}",
            lat=round(rng.uniform(8.5, 23.4), 4),
            lon=round(rng.uniform(102.1, 109.5), 4),
            province=f"{n % 34 + 1:02d}",
            covered=n % 3 == 0,
            teams=rng.randint(0, 40),
            members=rng.randint(0, 400),
        )
        for n in range(count)
    ]


def test_the_national_2025_map_is_well_under_150_kb_gzipped() -> None:
    points = national_points(3_321)
    body = map_body("2025", None, points)
    decoded = orjson.loads(body)
    assert decoded["fields"] == list(FIELDS)
    first = dict(zip(decoded["fields"], decoded["points"][0], strict=True))
    assert first == {
        "code": "00000",
        "name": points[0].name,
        "lat": points[0].lat,
        "lon": points[0].lon,
        "province": "01",
        "covered": 1,
        "teams": points[0].teams,
        "members": points[0].members,
    }
    assert len(decoded["points"]) == 3_321
    assert len(gzip.compress(body, compresslevel=6)) < 150_000
