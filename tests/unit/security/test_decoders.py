"""The stream decoders on hostile input: an event, or PoisonEntryError; never anything else."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contracts.events import PoisonEntryError, decode_entry, decode_event, entry_fields
from tests.unit.security.garbage import TEMPLATES, entries, envelope_payloads


def decodes_or_poison(raw: str | bytes) -> bool:
    """True when it decoded, False when refused as poison; any other exception fails."""
    try:
        decode_event(raw)
    except PoisonEntryError:
        return False
    return True


@settings(max_examples=600, deadline=None)
@given(envelope_payloads)
def test_decode_event_refuses_garbage_only_as_poison(raw: str | bytes) -> None:
    decoded = decodes_or_poison(raw)
    if decoded:
        # Whatever was accepted is a whole, valid event that encodes back to itself.
        event = decode_event(raw)
        assert decode_event(event.to_json()) == event


@settings(max_examples=400, deadline=None)
@given(entries)
def test_decode_entry_refuses_garbage_only_as_poison(fields: dict[str, Any]) -> None:
    as_redis = {
        key.encode(): value if isinstance(value, bytes) else str(value).encode()
        for key, value in fields.items()
    }
    for candidate in (as_redis, {k: v for k, v in fields.items() if isinstance(v, str)}):
        with contextlib.suppress(PoisonEntryError):
            decode_entry(candidate)


@given(st.sampled_from(TEMPLATES))
def test_valid_envelopes_decode_and_round_trip(template: dict[str, Any]) -> None:
    event = decode_event(json.dumps(template))
    fields = {k.encode(): v.encode() for k, v in entry_fields(event).items()}
    assert decode_entry(fields) == event
    assert json.loads(event.to_json()) == template
