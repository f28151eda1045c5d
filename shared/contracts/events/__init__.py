"""Every event contract, and the one decoder consumers use for stream entries."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from shared.contracts.events.activity import ActivityEvent, SupportRecorded
from shared.contracts.events.registry import (
    RegistryEvent,
    TargetSet,
    TeamCreated,
    TeamDissolved,
    TeamEvent,
    TeamMembersChanged,
    TeamPlaced,
    UnitRegistered,
)
from shared.contracts.streams import ENVELOPE_FIELD

Event = Annotated[
    UnitRegistered
    | TeamCreated
    | TeamMembersChanged
    | TeamDissolved
    | TeamPlaced
    | TargetSet
    | SupportRecorded,
    Field(discriminator="type"),
]
EVENT_TYPES = (
    UnitRegistered,
    TeamCreated,
    TeamMembersChanged,
    TeamDissolved,
    TeamPlaced,
    TargetSet,
    SupportRecorded,
)
_event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


class PoisonEntryError(ValueError):
    """A stream entry that no retry can make valid: it belongs in the dead-letter stream."""


def decode_event(raw: str | bytes) -> Event:
    """One envelope from its JSON text; raises PoisonEntryError on anything malformed."""
    try:
        return _event_adapter.validate_json(raw)
    except ValidationError as error:
        raise PoisonEntryError(f"invalid event: {error.error_count()} errors: {error}") from error


def decode_entry(fields: dict[bytes, bytes] | dict[str, str]) -> Event:
    """One stream entry (its field map, as redis-py returns it) to its event."""
    raw = fields.get(ENVELOPE_FIELD) or fields.get(ENVELOPE_FIELD.encode())  # type: ignore[call-overload]
    if raw is None:
        raise PoisonEntryError(f"entry has no {ENVELOPE_FIELD!r} field: {list(fields)[:5]}")
    return decode_event(raw)


def entry_fields(event: RegistryEvent | ActivityEvent) -> dict[str, str]:
    """The field map an event is XADDed with."""
    return {ENVELOPE_FIELD: event.to_json()}


__all__ = [
    "EVENT_TYPES",
    "ActivityEvent",
    "Event",
    "PoisonEntryError",
    "RegistryEvent",
    "SupportRecorded",
    "TargetSet",
    "TeamCreated",
    "TeamDissolved",
    "TeamEvent",
    "TeamMembersChanged",
    "TeamPlaced",
    "UnitRegistered",
    "decode_entry",
    "decode_event",
    "entry_fields",
]
