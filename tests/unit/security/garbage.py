"""Hypothesis strategies for hostile stream entries: raw bytes, broken JSON, mutated envelopes.

Shared by the decoder properties (tests/unit/security) and the consumer tests that XADD
the same garbage into real streams (tests/integration/security).
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

from hypothesis import strategies as st

from shared.contracts.events import SupportRecorded, TeamCreated, UnitRegistered
from shared.contracts.events.activity import SupportState
from shared.contracts.events.registry import MemberState, TeamState, UnitState

HOSTILE_TEXT = (
    "'; DROP TABLE aggregator.figures; --",
    "<script>alert(1)</script>",
    '" OR "1"="1',
    "\x00\x01\x02\x1b[31m",
    "\u202e\ufeff\u0000",
    "9" * 400,
    "-1e99999",
    "NaN",
    "Infinity",
    "team.created",
    "unit.deleted",
    "../../etc/passwd",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🚀",
)
INVALID_UTF8 = (b"\xff\xfe\xfd", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")


def _templates() -> list[dict[str, Any]]:
    """Valid envelopes (as JSON objects) of each kind, for mutation."""
    team = TeamState(
        team_id=uuid.UUID(int=1),
        unit_code="04378-001",
        unit_level="village",
        status="active",
        version=1,
        members=(
            MemberState(member_id=uuid.UUID(int=2), full_name="Hoàng Văn Sơn", role="leader"),
        ),
    )
    events = [
        UnitRegistered.new(
            edition="legacy",
            unit_path=("15", "136", "04378", "04378-001"),
            payload=UnitState(
                code="04378-001",
                name="Thôn Khe Lóng",
                level="village",
                kind="thôn",
                parent_code="04378",
            ),
        ),
        TeamCreated.new(
            edition="legacy", unit_path=("15", "136", "04378", "04378-001"), payload=team
        ),
        SupportRecorded.new(
            edition="legacy",
            unit_path=("15", "136", "04378", "04378-001"),
            payload=SupportState(
                team_id=team.team_id,
                unit_code="04378-001",
                occurred_on=date(2024, 5, 20),
                category="vneid",
                residents_helped=12,
            ),
        ),
    ]
    return [json.loads(event.to_json()) for event in events]


TEMPLATES = _templates()

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(HOSTILE_TEXT),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> str:
    """A valid envelope with one field replaced, removed, or a field added; as JSON text."""
    envelope = json.loads(json.dumps(draw(st.sampled_from(TEMPLATES))))
    path = draw(st.sampled_from(_paths(envelope)))
    *parents, last = path
    target = envelope
    for step in parents:
        target = target[step]
    action = draw(st.sampled_from(("replace", "delete", "add")))
    if action == "replace":
        target[last] = draw(json_values)
    elif action == "delete" and isinstance(target, dict):
        del target[last]
    elif isinstance(target, dict):
        target[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
    else:
        target.append(draw(json_values))
    return json.dumps(envelope, ensure_ascii=draw(st.booleans()))


broken_json = st.one_of(
    st.sampled_from(TEMPLATES).map(lambda t: json.dumps(t)[: len(json.dumps(t)) // 2]),
    st.sampled_from(("", "{", "null", "[]", "{}", '{"data": {}}', "1" * 5000, "[" * 2000)),
    json_values.map(lambda v: json.dumps(v)),
)
raw_bytes = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(INVALID_UTF8),
    st.tuples(mutated_envelopes(), st.sampled_from(INVALID_UTF8)).map(
        lambda pair: pair[0].encode()[:20] + pair[1] + pair[0].encode()[20:]
    ),
)
envelope_payloads = st.one_of(mutated_envelopes(), broken_json, raw_bytes)

# Whole entries as XADD takes them: usually an `envelope` field, sometimes other fields.
entries = st.one_of(
    envelope_payloads.map(lambda payload: {"envelope": payload}),
    st.dictionaries(
        st.sampled_from(("data", "Envelope", "envelope ", "original_id", "reason", "x")),
        st.one_of(envelope_payloads, st.integers()),
        min_size=1,
        max_size=3,
    ),
    st.tuples(envelope_payloads, envelope_payloads).map(
        lambda pair: {"envelope": pair[0], "data": pair[1]}
    ),
)
