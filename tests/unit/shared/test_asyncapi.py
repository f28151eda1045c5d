"""The AsyncAPI document: generated from the contracts, committed, and served by every service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import FastAPI, Request

from shared.contracts.events import EVENT_TYPES
from shared.contracts.streams import ACTIVITY_EVENTS, REGISTRY_EVENTS
from shared.messaging.asyncapi import asyncapi_document, asyncapi_yaml
from shared.runtime.settings import Settings
from shared.web.app import create_service_app
from shared.web.auth import Authenticator, OpenAccess

COMMITTED = Path(__file__).parents[3] / "docs" / "asyncapi.yaml"


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_committed_document_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == asyncapi_yaml(), (
        "docs/asyncapi.yaml is stale: "
        "run `python -m shared.messaging.asyncapi > docs/asyncapi.yaml`"
    )


def test_every_event_type_is_a_message_on_its_stream() -> None:
    document = yaml.safe_load(asyncapi_yaml())
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"]: channel for channel in document["channels"].values()}
    assert set(addresses) == {REGISTRY_EVENTS, ACTIVITY_EVENTS}
    for event in EVENT_TYPES:
        message = document["components"]["messages"][event.__name__]
        assert message["name"] == event.model_fields["type"].default
        assert event.__name__ in addresses[event.stream]["messages"]
        schema = _resolve(document, message["payload"]["$ref"])
        assert schema["properties"]["type"]["const"] == message["name"]
        assert schema["additionalProperties"] is False


def test_every_reference_resolves() -> None:
    document = asyncapi_document()
    references = _refs(document)
    assert len(references) > 20
    for ref in references:
        assert _resolve(document, ref) is not None, ref


def test_operations_reference_only_their_channel_messages() -> None:
    document = asyncapi_document()
    actions = sorted(op["action"] for op in document["operations"].values())
    assert actions == ["receive", "receive", "receive", "send", "send"]
    for operation in document["operations"].values():
        channel = operation["channel"]["$ref"]
        assert all(m["$ref"].startswith(channel + "/messages/") for m in operation["messages"])


async def test_every_service_app_serves_the_document() -> None:
    @contextlib.asynccontextmanager
    async def open_access(_: Settings, __: str) -> AsyncIterator[Authenticator]:
        yield OpenAccess()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    async def ready(_: Request) -> Mapping[str, bool]:
        return {}

    app = create_service_app(
        service="probe",
        title="probe",
        description="",
        lifespan=lifespan,
        routers=[],
        readiness=ready,
        authenticator=open_access,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        response = await client.get("/asyncapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(response.text) == yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
