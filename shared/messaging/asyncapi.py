"""The AsyncAPI 3 document of both streams, generated from the event contracts.

`python -m shared.messaging.asyncapi > docs/asyncapi.yaml` refreshes the committed copy; every
service serves the same document at GET /asyncapi.yaml.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from shared.contracts.envelope import Envelope
from shared.contracts.events import EVENT_TYPES
from shared.contracts.streams import (
    ACTIVITY_EVENTS,
    ACTIVITY_GROUP,
    AGGREGATOR_GROUP,
    ENVELOPE_FIELD,
    REGISTRY_EVENTS,
)

SCHEMA_REF = "#/components/schemas/{model}"

# channel id -> (stream, producing service, consumer groups reading it)
CHANNELS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "registryEvents": (REGISTRY_EVENTS, "registry", (ACTIVITY_GROUP, AGGREGATOR_GROUP)),
    "activityEvents": (ACTIVITY_EVENTS, "activity", (AGGREGATOR_GROUP,)),
}

CHANNEL_TEXT = (
    "A Redis stream. Every entry has exactly one field, `{field}`, holding the event as one "
    "JSON object (readable with a plain `XRANGE {stream} - +`). Consumers read it in consumer "
    "groups, acknowledge after their transaction commits, reclaim entries left pending by a "
    "dead consumer, and move an entry that keeps failing to `{stream}.dead`."
)

SUMMARIES = {
    "unit.registered": "A unit (province, district, commune or village) was registered.",
    "team.created": "A team was set up, attached to one unit.",
    "team.members_changed": "A team's members changed.",
    "team.dissolved": "A team was dissolved; its unit is no longer covered.",
    "team.placed": "A team was placed (or moved) on a unit of another edition (the 2025 map).",
    "target.set": "An operator set (or replaced) a unit's target: coverage, training, "
    "outcomes, due date; the newest `version` per unit wins.",
    "support.recorded": "A team helped residents (count, category, day).",
}

TEAM_EVENT_TEXT = (
    " Carries the team's whole current state and its `version`: a consumer keeps the newest "
    "version per team and applies the difference, so events may arrive in any order or twice."
)


def _message(event: type[Envelope]) -> dict[str, Any]:
    event_type: str = event.model_fields["type"].default
    description = f"`{event_type}` on `{event.stream}`, produced by {event.producer_name}."
    if event_type.startswith("team."):
        description += TEAM_EVENT_TEXT
    elif event_type == "support.recorded":
        description += " Additive; consumers deduplicate by `event_id`."
    message: dict[str, Any] = {
        "name": event_type,
        "title": event.__name__,
        "contentType": "application/json",
        "description": description,
        "payload": {"$ref": SCHEMA_REF.format(model=event.__name__)},
    }
    if event_type in SUMMARIES:
        message["summary"] = SUMMARIES[event_type]
    return message


def _operation(action: str, channel_id: str, names: list[str], summary: str) -> dict[str, Any]:
    # Fresh dicts each time: shared ones would come out as YAML anchors and aliases.
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel_id}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel_id}/messages/{name}"} for name in names],
    }


def _schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(event, "serialization") for event in EVENT_TYPES], ref_template=SCHEMA_REF
    )
    definitions: dict[str, Any] = top["$defs"]
    return dict(sorted(definitions.items()))


def asyncapi_document() -> dict[str, Any]:
    """The whole document as plain data (AsyncAPI 3.0.0)."""
    messages = {event.__name__: _message(event) for event in EVENT_TYPES}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for channel_id, (stream, producer, groups) in CHANNELS.items():
        names = [event.__name__ for event in EVENT_TYPES if event.stream == stream]
        channels[channel_id] = {
            "address": stream,
            "title": stream,
            "description": CHANNEL_TEXT.format(field=ENVELOPE_FIELD, stream=stream),
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
        }
        suffix = channel_id[0].upper() + channel_id[1:]
        operations[f"{producer}Publishes{suffix}"] = _operation(
            "send", channel_id, names, f"{producer} relays its outbox to {stream} (XADD)."
        )
        for group in groups:
            operations[f"{group}Consumes{suffix}"] = _operation(
                "receive",
                channel_id,
                names,
                f"Consumer group `{group}` reads {stream} (XREADGROUP, then XACK).",
            )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "cdtt event streams",
            "version": "1",
            "description": (
                "Events between the cdtt services: the registry's units and teams, and the "
                "support work recorded by activity. Generated from the contracts in "
                "`shared/contracts/events/`; do not edit by hand."
            ),
            "license": {
                "name": "GPL-3.0-or-later",
                "url": "https://www.gnu.org/licenses/gpl-3.0.html",
            },
        },
        "defaultContentType": "application/json",
        "servers": {
            "redis": {
                "host": "localhost:6379",
                "protocol": "redis",
                "description": "Redis or Valkey; CDTT_REDIS_URL names the real one.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": _schemas()},
    }


@functools.cache
def asyncapi_yaml() -> str:
    """The document as YAML text, built on first use and kept."""
    text: str = yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True, width=100)
    return text


if __name__ == "__main__":
    sys.stdout.write(asyncapi_yaml())
