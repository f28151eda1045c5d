"""Schemathesis against each service's OpenAPI document, the services running as real processes.

With an admin key (so generated requests reach the routes' logic) and every check but one:
no 5xx, status codes, content types, headers and bodies as documented, invalid input
refused, and `ignored_auth` (every secured operation refuses a request without the key).
`positive_data_acceptance` is left out: a request valid by the schema may still name a unit
that does not exist or conflict with a team, which the rules refuse (404, 409, 422) and no
schema can express. The batch endpoint skips `negative_data_rejection` too: by design it
answers 200 with one result per item, rejecting the invalid items and keeping the rest,
where a schema-level check expects the whole request refused. /v1/live never ends, so it
is tested in test_processes.py instead. Bounded for CI: a fixed seed and a few examples
per operation (about a minute and a half here).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.runtime.settings import SERVICES, ServiceName, Settings
from tests.e2e.stack import Stack
from tests.integration.security.conftest import make_key

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(400)]

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
EXAMPLES_PER_OPERATION = 25
SEED = 20221128


@pytest.fixture
async def stack(secured: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    unthrottled = secured.model_copy(update={"rate_limit_per_second": 100_000.0})
    async with Stack(unthrottled, tmp_path) as running:
        await running.migrate()
        loaded = await running.cdtt("units", "load", "--edition", "legacy", "--province", "15")
        assert loaded.returncode == 0, loaded.stderr
        for service in SERVICES:
            await running.start(service)
        yield running


async def test_every_service_conforms_to_its_openapi_document(
    stack: Stack, auth_engine: AsyncEngine, tmp_path: Path
) -> None:
    admin = await make_key(auth_engine, "admin", name="schemathesis")
    batch = "/v1/support-events:batch"
    runs: list[tuple[ServiceName, list[str]]] = [
        ("registry", ["--exclude-checks", "positive_data_acceptance"]),
        ("activity", ["--exclude-checks", "positive_data_acceptance", "--exclude-path", batch]),
        (
            "activity",
            [
                "--exclude-checks",
                "positive_data_acceptance,negative_data_rejection",
                "--include-path",
                batch,
            ],
        ),
        (
            "aggregator",
            ["--exclude-checks", "positive_data_acceptance", "--exclude-path", "/v1/live"],
        ),
    ]
    failures = []
    for run, (service, selection) in enumerate(runs):
        process = await asyncio.create_subprocess_exec(
            SCHEMATHESIS,
            "run",
            f"{stack[service].url}/openapi.json",
            "--checks",
            "all",
            *selection,
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            str(SEED),
            "--generation-database",
            "none",
            "--no-color",
            "--header",
            f"Authorization: Bearer {admin.text}",
            "--report-dir",
            str(tmp_path / f"schemathesis-{run}-{service}"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
        if process.returncode != 0:
            failures.append(
                f"--- {service} {selection} ---\n{output.decode(errors='replace')[-6000:]}"
            )
    assert not failures, "\n".join(failures) + "\n" + stack.logs()
