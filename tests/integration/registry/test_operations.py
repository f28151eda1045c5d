"""The registry as operators see it: health, readiness (database, Redis, relay), metrics, docs."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.registry.bootstrap import create_app
from services.registry.cli import LoadReport
from shared.runtime.metrics import REGISTRY
from shared.runtime.metrics import outbox_backlog as outbox_backlog_rows
from shared.runtime.producer import ProducerRuntime
from shared.runtime.settings import Settings
from tests.waiting import wait_until


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "checks": {"database": True, "redis": True, "relay": True},
    }


async def test_not_ready_once_the_relay_has_stopped(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    runtime: ProducerRuntime = app.state.runtime
    await runtime.relay.stop()
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": True, "redis": True, "relay": False}


async def test_the_outbox_backlog_gauge_is_kept(
    settings: Settings, legacy_yen_bai: LoadReport
) -> None:
    gauge = outbox_backlog_rows.labels("registry")
    gauge.set(-1)
    app = create_app(settings)
    async with app.router.lifespan_context(app):

        async def measured() -> bool:
            value = REGISTRY.get_sample_value("cdtt_outbox_backlog_rows", {"service": "registry"})
            return value is not None and value >= 0

        await wait_until(measured, timeout=5, message="backlog measured at startup")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            metrics = (await client.get("/metrics")).text
    assert 'cdtt_outbox_backlog_rows{service="registry"}' in metrics


async def test_docs_list_every_registry_endpoint(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {
        ("get", "/v1/units/{code}"),
        ("get", "/v1/units"),
        ("post", "/v1/units"),
        ("post", "/v1/teams"),
        ("get", "/v1/teams/{team_id}"),
        ("get", "/v1/teams"),
        ("post", "/v1/teams/{team_id}/members"),
        ("delete", "/v1/teams/{team_id}/members/{member_id}"),
        ("post", "/v1/teams/{team_id}/dissolve"),
    } <= {(method, path) for path, item in paths.items() for method in item}
    post_teams = paths["/v1/teams"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in post_teams["parameters"]}
    assert {"201", "409", "422"} <= set(post_teams["responses"])
