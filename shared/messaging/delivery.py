"""Delivery rules of the group reader: what counts as a delivery, when an entry is dead-lettered.

Pure decisions, no I/O: shared.messaging.consumer reads the streams, asks these rules
what to do with each entry and each failed attempt, and does it (XACK, XCLAIM, XADD).

- A delivery is a read that handed the entry to a handler: the reader's XREADGROUP and
  each XAUTOCLAIM of the reclaimer, as XPENDING counts them.
- Poison: an entry that does not decode is dead-lettered at once, on whichever delivery
  it is; no retry can make it valid, and it must not hold back the rest of its batch.
- A failed batch leaves its entries pending (that read counted as their first delivery);
  the reclaimer claims them in batches and retries each batch, then entry by entry if it
  fails again, so every failure is charged to the entry that causes it. A HeldBackError
  lets the rest of the batch be acknowledged and leaves only the held-back entries pending.
- An attempt that failed because PostgreSQL or Redis was away (shared.messaging.outages),
  or whose events came too early (HeldBackError with counts=False), is not the entry's
  fault and does not count: the consumer puts the count back (XCLAIM RETRYCOUNT
  deliveries - 1), so an outage longer than max_deliveries reclaims dead-letters nothing.
- Any other failure counts; one on delivery max_deliveries dead-letters the entry. An
  entry reclaimed after more than max_deliveries deliveries (its consumer died during
  the last allowed attempt) is dead-lettered without another try.
- A dead letter carries the entry's own fields and original_id, stream, group, consumer,
  deliveries and reason; an own field with one of those names is kept as
  original_field.<name>, so nothing the entry held is lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from shared.contracts.events import Event, PoisonEntryError, decode_entry
from shared.messaging.outages import dependency_unavailable

EntryId = bytes
Fields = dict[bytes, bytes]

# Metadata written beside an entry's own fields in the dead-letter stream.
DEAD_LETTER_FIELDS = (b"original_id", b"stream", b"group", b"consumer", b"deliveries", b"reason")
# Bounds a dead letter whose reason holds a long exception text.
MAX_REASON_CHARS = 2000


class HeldBackError(Exception):
    """Raised by a handler after committing every event of its batch but `event_ids`.

    Those entries stay pending and are retried by the reclaimer; the rest are
    acknowledged. `counts`: whether this attempt counts as one of the held-back entries'
    max_deliveries (False when they came too early, through no fault of their own).
    """

    def __init__(self, message: str, event_ids: Collection[uuid.UUID], *, counts: bool) -> None:
        super().__init__(message)
        self.event_ids = frozenset(event_ids)
        self.counts = counts


@dataclass(frozen=True)
class DeadLetter:
    """Move the entry to the dead-letter stream (and acknowledge it), saying why."""

    deliveries: int
    reason: str


@dataclass(frozen=True)
class Retry:
    """Leave the entry pending with this attempt counted; the reclaimer tries it again."""

    deliveries: int


@dataclass(frozen=True)
class Uncounted:
    """Leave the entry pending with this attempt not counted: XCLAIM RETRYCOUNT `retry_count`."""

    retry_count: int


def decode(fields: Fields, deliveries: int) -> Event | DeadLetter:
    """The entry's event, or its dead letter when it is poison."""
    try:
        return decode_entry(fields)
    except PoisonEntryError as error:
        return DeadLetter(deliveries, f"undecodable: {error}")


def counts_as_delivery(error: BaseException) -> bool:
    """Whether a failed attempt counts towards max_deliveries (False: not the entry's fault)."""
    too_early = isinstance(error, HeldBackError) and not error.counts
    return not (too_early or dependency_unavailable(error))


def acknowledged_despite(
    held: HeldBackError, entries: Sequence[tuple[EntryId, Event]]
) -> list[tuple[EntryId, Event]]:
    """The entries of a batch that `held` lets through: committed, so acknowledged now."""
    return [
        (entry_id, event) for entry_id, event in entries if event.event_id not in held.event_ids
    ]


@dataclass(frozen=True)
class DeliveryRules:
    """When a reclaimed entry is tried again and when it goes to the dead-letter stream."""

    max_deliveries: int

    def before_attempt(self, deliveries: int) -> DeadLetter | None:
        """A reclaimed entry delivered `deliveries` times: its dead letter, or None to try it."""
        if deliveries > self.max_deliveries:
            reason = f"delivered {deliveries} times (max_deliveries={self.max_deliveries})"
            return DeadLetter(deliveries, reason)
        return None

    def after_failure(self, error: Exception, deliveries: int) -> DeadLetter | Retry | Uncounted:
        """What follows a handler's failure on a reclaimed entry's delivery `deliveries`."""
        if not counts_as_delivery(error):
            return Uncounted(retry_count=deliveries - 1)
        if deliveries >= self.max_deliveries:
            reason = f"handler failed on delivery {deliveries}/{self.max_deliveries}: {error!r}"
            return DeadLetter(deliveries, reason)
        return Retry(deliveries)


def dead_letter_fields(
    fields: Mapping[bytes, bytes],
    letter: DeadLetter,
    *,
    entry_id: EntryId,
    stream: str,
    group: str,
    consumer: str,
) -> dict[bytes, bytes]:
    """What the dead-letter stream receives for the entry `entry_id` of `stream`."""
    record = {
        b"original_field." + name if name in DEAD_LETTER_FIELDS else name: value
        for name, value in fields.items()
    }
    return record | {
        b"original_id": entry_id,
        b"stream": stream.encode(),
        b"group": group.encode(),
        b"consumer": consumer.encode(),
        b"deliveries": str(letter.deliveries).encode(),
        b"reason": letter.reason[:MAX_REASON_CHARS].encode(),
    }
