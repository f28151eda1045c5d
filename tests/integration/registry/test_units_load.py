"""Loading official units: each new unit once with its event; a second load emits nothing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.adapters.official_units import UnknownProvinceError, official_units
from services.registry.adapters.tables import outbox, units
from services.registry.cli import load_units
from shared.contracts.events import UnitRegistered, decode_event
from shared.runtime.settings import Settings, libpq_url
from tests.integration.registry.observe import outbox_types, stream_envelopes


async def unit_rows(engine: AsyncEngine) -> list[tuple[str, str, str, tuple[str, ...]]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(units.c.edition, units.c.code, units.c.level, units.c.path).order_by(
                units.c.edition, units.c.code
            )
        )
        return [(r.edition, r.code, r.level, tuple(r.path)) for r in rows]


async def outbox_events(engine: AsyncEngine) -> list[UnitRegistered]:
    async with engine.connect() as conn:
        texts = await conn.scalars(select(outbox.c.envelope).order_by(outbox.c.id))
        events = [decode_event(text) for text in texts]
    assert all(isinstance(e, UnitRegistered) for e in events)
    return events  # type: ignore[return-value]


async def test_loading_twice_adds_and_emits_nothing_the_second_time(engine: AsyncEngine) -> None:
    yen_bai = official_units("legacy", ["15"])
    first = await load_units(engine, "legacy", yen_bai)
    rows, events = await unit_rows(engine), await outbox_events(engine)

    second = await load_units(engine, "legacy", yen_bai)

    assert (first.units, first.new_units) == (178, 178)
    assert (second.units, second.new_units) == (178, 0)
    assert await unit_rows(engine) == rows
    assert await outbox_events(engine) == events
    # The seed figures: Yên Bái has 9 districts; 168 communes under them.
    assert Counter(level for _, _, level, _ in rows) == {
        "province": 1,
        "district": 9,
        "commune": 168,
    }


async def test_each_new_unit_emits_unit_registered_with_its_path(engine: AsyncEngine) -> None:
    await load_units(engine, "legacy", official_units("legacy", ["15"]))
    events = await outbox_events(engine)
    by_code = {e.payload.code: e for e in events}
    assert len(events) == len(by_code) == 178
    assert {e.edition for e in events} == {"legacy"}
    commune = by_code["04378"]
    assert commune.unit_path == ("15", "136", "04378")
    assert (commune.payload.name, commune.payload.level, commune.payload.kind) == (
        "Xã Lang Thíp",
        "commune",
        "xã",
    )
    assert commune.payload.parent_code == "136"
    assert by_code["15"].unit_path == ("15",)
    assert all(e.unit_path[-1] == code for code, e in by_code.items())


async def test_a_later_load_adds_only_what_is_missing(engine: AsyncEngine) -> None:
    await load_units(engine, "legacy", official_units("legacy", ["15"]))
    both = await load_units(engine, "legacy", official_units("legacy", ["15", "12"]))
    lai_chau = len(official_units("legacy", ["12"])[0].units)
    assert both.new_units == lai_chau
    assert (await outbox_types(engine))["unit.registered"] == 178 + lai_chau


async def test_editions_load_side_by_side(engine: AsyncEngine) -> None:
    await load_units(engine, "legacy", official_units("legacy", ["15"]))
    report = await load_units(engine, "2025", official_units("2025", ["15"]))
    assert report.new_units == report.units == 100
    rows = await unit_rows(engine)
    assert ("2025", "15", "province", ("15",)) in rows
    assert ("legacy", "15", "province", ("15",)) in rows
    assert {len(path) for edition, _, level, path in rows if edition == "2025"} == {1, 2}


def test_province_codes_are_read_as_numbers_and_checked() -> None:
    assert [p.code for p in official_units("legacy", ["1", "015", "15"])] == ["01", "15"]
    with pytest.raises(UnknownProvinceError, match="no province 03"):
        official_units("legacy", ["3"])
    with pytest.raises(UnknownProvinceError, match="a number"):
        official_units("2025", ["Yên Bái"])


async def run_cdtt(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "CDTT_DATABASE_URL": libpq_url(settings.database_url_for("registry")),
        "CDTT_REDIS_URL": settings.require_redis_url(),
        "CDTT_STREAM_NAMESPACE": settings.stream_namespace,
        "COLUMNS": "200",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cdtt.cli import main; main()",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_the_command_loads_publishes_and_replays(
    settings: Settings, engine: AsyncEngine, redis: Redis
) -> None:
    status, output = await run_cdtt(
        settings, "units", "load", "--edition", "legacy", "--province", "15"
    )
    assert status == 0, output
    assert "178 new" in output
    assert "published 178 events" in output
    sent = await stream_envelopes(redis, settings)
    assert Counter(e["type"] for e in sent) == {"unit.registered": 178}

    status, output = await run_cdtt(
        settings, "units", "load", "--edition", "legacy", "--province", "15"
    )
    assert status == 0, output
    assert "0 new" in output
    assert "178 already registered" in output
    assert len(await stream_envelopes(redis, settings)) == 178

    status, output = await run_cdtt(settings, "registry", "replay", "--since-hours", "1")
    assert status == 0, output
    assert "marked 178 retained events" in output
    resent = await stream_envelopes(redis, settings)
    assert len(resent) == 356
    assert json.dumps(resent[178:]) == json.dumps(resent[:178])


async def test_the_command_refuses_an_unknown_province(settings: Settings) -> None:
    status, output = await run_cdtt(
        settings, "units", "load", "--edition", "2025", "--province", "3"
    )
    assert status == 2
    assert "no province 03" in output
