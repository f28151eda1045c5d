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
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cdtt.stack import cdtt_command
from shared.runtime.settings import Settings
from tests.conftest import (
    create_database,
    database_url,
    drop_database,
    isolated_settings,
    unique_name,
)
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
        [
            *cdtt_command(),
            *("units", "load", "--edition", "legacy", "--province", PROVINCE, "--no-publish"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"units load failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session")
def fault_template(servers: Servers, template_database: str) -> Iterator[str]:
    """The migrated template plus Yên Bái's units, their events unsent."""
    name = unique_name("cdtt_ftpl")
    asyncio.run(create_database(servers, name, template_database))
    try:
        load_units(database_url(servers.database_url, name))
        yield name
    finally:
        asyncio.run(drop_database(servers, name))


@pytest.fixture
async def fault_settings(servers: Servers, fault_template: str) -> AsyncIterator[Settings]:
    """One case's own copy of the template and its own stream namespace; auth off."""
    async with isolated_settings(
        servers, fault_template, prefix="cdtt_f", namespace="faults", edition="legacy", auth=False
    ) as isolated:
        yield isolated


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
