"""shared.messaging.delivery: what counts as a delivery, poison, dead-lettering, dead letters."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError

from shared.contracts.events import Event, UnitRegistered, entry_fields
from shared.contracts.events.registry import UnitState
from shared.messaging.delivery import (
    DEAD_LETTER_FIELDS,
    MAX_REASON_CHARS,
    DeadLetter,
    DeliveryRules,
    Fields,
    HeldBackError,
    Retry,
    Uncounted,
    acknowledged_despite,
    counts_as_delivery,
    dead_letter_fields,
    decode,
)

RULES = DeliveryRules(max_deliveries=3)


def unit_event(n: int = 1) -> UnitRegistered:
    payload = UnitState(
        code=f"{n:05d}", name=f"Xã Thử {n}", level="commune", kind="xã", parent_code="136"
    )
    return UnitRegistered.new(
        edition="legacy", unit_path=("15", "136", f"{n:05d}"), payload=payload
    )


def as_entry(event: UnitRegistered) -> Fields:
    """The field map redis-py returns for an event XADDed by a producer."""
    return {name.encode(): value.encode() for name, value in entry_fields(event).items()}


class StartingUpError(Exception):
    """What asyncpg raises while PostgreSQL is starting: SQLSTATE 57P03."""

    sqlstate = "57P03"


def outage() -> Exception:
    return DBAPIError("SELECT 1", None, StartingUpError())


# --- poison --------------------------------------------------------------------------


def test_an_entry_that_decodes_is_its_event() -> None:
    event = unit_event()
    assert decode(as_entry(event), deliveries=1) == event


@pytest.mark.parametrize(
    "fields",
    [{b"other": b"x"}, {b"envelope": b"not json{"}, {b"envelope": b'{"type": "unit.gone"}'}],
    ids=repr,
)
def test_an_entry_that_does_not_decode_is_dead_lettered_on_the_delivery_in_hand(
    fields: Fields,
) -> None:
    outcome = decode(fields, deliveries=2)
    assert isinstance(outcome, DeadLetter)
    assert outcome.deliveries == 2
    assert outcome.reason.startswith("undecodable: ")


# --- what counts as a delivery -------------------------------------------------------


def test_a_failure_of_the_entrys_own_counts() -> None:
    assert counts_as_delivery(ValueError("constraint violated"))


@pytest.mark.parametrize(
    "error", [outage(), RedisConnectionError("Connection closed by server."), TimeoutError()]
)
def test_a_failure_because_postgresql_or_redis_is_away_does_not_count(error: Exception) -> None:
    assert not counts_as_delivery(error)


def test_events_held_back_because_they_came_too_early_do_not_count() -> None:
    assert not counts_as_delivery(HeldBackError("unit unknown", set(), counts=False))


def test_events_held_back_once_they_should_have_been_applied_count() -> None:
    assert counts_as_delivery(HeldBackError("unit unknown", set(), counts=True))


def test_a_held_back_attempt_caused_by_an_outage_does_not_count() -> None:
    held = HeldBackError("unit unknown", set(), counts=True)
    held.__cause__ = outage()
    assert not counts_as_delivery(held)


# --- when to dead-letter -------------------------------------------------------------


@pytest.mark.parametrize("deliveries", [1, 2, 3])
def test_a_reclaimed_entry_within_max_deliveries_is_tried(deliveries: int) -> None:
    assert RULES.before_attempt(deliveries) is None


def test_a_reclaimed_entry_past_max_deliveries_is_dead_lettered_untried() -> None:
    # Its consumer died during the last allowed attempt: no attempt is left.
    assert RULES.before_attempt(4) == DeadLetter(4, "delivered 4 times (max_deliveries=3)")


@pytest.mark.parametrize("deliveries", [1, 2])
def test_a_counted_failure_before_max_deliveries_is_retried(deliveries: int) -> None:
    assert RULES.after_failure(ValueError("bad"), deliveries) == Retry(deliveries)


def test_a_counted_failure_on_delivery_max_deliveries_is_dead_lettered_with_the_error() -> None:
    letter = RULES.after_failure(ValueError("constraint violated"), 3)
    assert letter == DeadLetter(
        3, "handler failed on delivery 3/3: ValueError('constraint violated')"
    )


@pytest.mark.parametrize("deliveries", [1, 3, 4])
def test_an_uncounted_failure_puts_the_count_back_even_at_the_limit(deliveries: int) -> None:
    assert RULES.after_failure(outage(), deliveries) == Uncounted(retry_count=deliveries - 1)
    too_early = HeldBackError("unit unknown", set(), counts=False)
    assert RULES.after_failure(too_early, deliveries) == Uncounted(retry_count=deliveries - 1)


def simulate(rules: DeliveryRules, failures: list[Exception]) -> list[object]:
    """XPENDING's count through a batch read, then one reclaim a failure, as Redis keeps it."""
    times_delivered = 1  # the reader's XREADGROUP; its batch failed with failures[0]
    outcomes: list[object] = []
    for error in failures[1:]:
        times_delivered += 1  # XAUTOCLAIM
        letter = rules.before_attempt(times_delivered)
        outcome = letter or rules.after_failure(error, times_delivered)
        outcomes.append(outcome)
        if isinstance(outcome, DeadLetter):
            break
        if isinstance(outcome, Uncounted):
            times_delivered = outcome.retry_count  # XCLAIM RETRYCOUNT
    return outcomes


def test_an_outage_longer_than_max_deliveries_reclaims_dead_letters_nothing() -> None:
    outcomes = simulate(RULES, [outage()] * 50)
    assert len(outcomes) == 49
    assert not any(isinstance(outcome, DeadLetter) for outcome in outcomes)


def test_after_an_outage_the_entry_still_gets_its_max_deliveries_attempts() -> None:
    bad = ValueError("constraint violated")
    # The batch read (1), an outage that is taken back, then two counted reclaims (2, 3).
    outcomes = simulate(RULES, [bad, outage(), bad, bad])
    assert outcomes == [
        Uncounted(retry_count=1),
        Retry(2),
        DeadLetter(3, f"handler failed on delivery 3/3: {bad!r}"),
    ]


# --- a batch with events held back ---------------------------------------------------


def test_the_events_not_held_back_are_acknowledged_in_their_order() -> None:
    events: list[Event] = [unit_event(n) for n in range(5)]
    entries = [(f"1-{n}".encode(), event) for n, event in enumerate(events)]
    held = HeldBackError("too early", {events[1].event_id, events[3].event_id}, counts=False)
    assert acknowledged_despite(held, entries) == [entries[0], entries[2], entries[4]]


# --- what a dead letter carries ------------------------------------------------------


def test_a_dead_letter_carries_the_entry_and_where_it_came_from() -> None:
    fields = {b"envelope": b"not json{"}
    record = dead_letter_fields(
        fields,
        DeadLetter(1, "undecodable: no"),
        entry_id=b"1700000000000-0",
        stream="registry.events.v1",
        group="aggregator",
        consumer="host-1-abc",
    )
    assert record == {
        b"envelope": b"not json{",
        b"original_id": b"1700000000000-0",
        b"stream": b"registry.events.v1",
        b"group": b"aggregator",
        b"consumer": b"host-1-abc",
        b"deliveries": b"1",
        b"reason": b"undecodable: no",
    }


def test_an_entry_field_named_like_the_metadata_is_kept_under_another_name() -> None:
    fields = {name: b"from the entry: " + name for name in DEAD_LETTER_FIELDS}
    record = dead_letter_fields(
        fields, DeadLetter(2, "why"), entry_id=b"1-1", stream="s", group="g", consumer="c"
    )
    for name in DEAD_LETTER_FIELDS:
        assert record[b"original_field." + name] == b"from the entry: " + name
    assert record[b"reason"] == b"why"
    assert record[b"deliveries"] == b"2"


def test_a_long_reason_is_cut_and_vietnamese_text_is_kept() -> None:
    reason = "handler failed: Xã Thử " + "x" * 5000
    record = dead_letter_fields(
        {}, DeadLetter(5, reason), entry_id=b"1-1", stream="s", group="g", consumer="c"
    )
    assert record[b"reason"].decode() == reason[:MAX_REASON_CHARS]
