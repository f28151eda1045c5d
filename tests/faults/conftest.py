"""Fixtures of the fault suite: a database with Yên Bái's units, repetition, measurements.

Every case gets a copy of one database per run that is migrated and holds the legacy
units of province 15 with their `unit.registered` events still in the outbox (the
registry's relay sends them when it starts), and its own stream namespace. Each case
runs CDTT_FAULT_REPEAT times (1 in `make test`, 3 in `make faults`). What every run
measured is written to test-artifacts/faults.json when the session ends;
`python -m tests.faults.report` renders it into docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.runtime.settings import Settings
from tests.conftest import _admin, database_url
from tests.e2e.stack import CDTT
from tests.servers import Servers

REPEAT = int(os.environ.get("CDTT_FAULT_REPEAT", "1"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
MEASUREMENTS = ARTIFACTS / "faults.json"
PROVINCE = "15"  # Yên Bái, legacy edition


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "attempt" in metafunc.fixturenames:
        metafunc.parametrize("attempt", range(1, REPEAT + 1), ids=lambda n: f"run{n}")


def load_units(url: str) -> None:
    """Province 15's legacy units into the database at `url`, events left in the outbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDTT_")}
    env |= {"CDTT_DATABASE_URL": url, "CDTT_EDITION": "legacy"}
    done = subprocess.run(
        [CDTT, "units", "load", "--edition", "legacy", "--province", PROVINCE, "--no-publish"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"units load failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session")
def fault_template(servers: Servers, template_database: str) -> Iterator[str]:
    """The migrated template plus Yên Bái's units, their events unsent."""
    name = f"cdtt_ftpl_{uuid.uuid4().hex[:12]}"

    async def execute(sql: str) -> None:
        admin = await _admin(servers)
        try:
            await admin.execute(sql)
        finally:
            await admin.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    try:
        load_units(database_url(servers.database_url, name))
        yield name
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def fault_settings(servers: Servers, fault_template: str) -> AsyncIterator[Settings]:
    """One case's own copy of the template and its own stream namespace; auth off."""
    key = uuid.uuid4().hex[:12]
    name = f"cdtt_f_{key}"
    admin = await _admin(servers)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{fault_template}"')
    finally:
        await admin.close()
    namespace = f"faults:{key}:"
    yield Settings(
        env="test",
        redis_url=servers.redis_url,
        database_url=database_url(servers.database_url, name),
        stream_namespace=namespace,
        edition="legacy",
        auth=False,
        _env_file=None,  # type: ignore[call-arg]
    )
    admin = await _admin(servers)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    redis = Redis.from_url(servers.redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{namespace}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.fixture(scope="session")
def measurements() -> Iterator[list[dict[str, Any]]]:
    """Each run's figures; written to test-artifacts/faults.json at the end of the session."""
    runs: list[dict[str, Any]] = []
    yield runs
    if not runs:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeat": REPEAT,
        "cpus": os.cpu_count(),
        "runs": runs,
    }
    MEASUREMENTS.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
