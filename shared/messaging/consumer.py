"""Consumer side of the streams: a consumer group that hands decoded batches to a handler.

Built on FastStream 0.7's RedisBroker (RedisClusterBroker on a Redis Cluster). Per stream
partition (shared.contracts.streams.StreamLayout) there are two readers sharing one
consumer name: a FastStream batch subscriber (XREADGROUP ">" with a bounded
`max_records`) and a reclaimer task of ours (XAUTOCLAIM COUNT batch_size: FastStream's
`min_idle_time` subscriber claims one entry per call, so a restart that left hundreds of
entries pending took one transaction each to recover them). What to do with an
entry — what counts as a delivery, when it is poison, when it is dead-lettered and what
its dead letter carries — is decided by shared.messaging.delivery; this module does the
I/O, with redis-py where FastStream cannot do what those rules need, and says why:

- groups are created at "0" with MKSTREAM here (FastStream would create them at "$" and
  skip the backlog);
- acks are manual (XACK after the handler returned, so after its commit);
- a failing entry is never redelivered by FastStream, so the reclaimer retries it and
  reads its deliveries from XPENDING (one pipeline per claimed batch); the claimed batch
  is applied in one handler call and, if that fails for another reason than entries held
  back, entry by entry, so one bad entry still carries its own failure; an attempt that
  does not count is taken back with XCLAIM RETRYCOUNT; a dead letter is XADDed and acked
  in one MULTI;
- after NOGROUP (Redis lost the stream) FastStream stops the subscriber for good, so a
  supervisor recreates the group at "0" and replaces the broker, without a process restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faststream.middlewares import AckPolicy
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.annotations import RedisBatchStreamMessage
from faststream.redis.message import FAKE_CONSUMER
from faststream.redis.message import RedisBatchStreamMessage as RawBatchMessage
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT

from shared.contracts.events import Event
from shared.contracts.streams import StreamLayout
from shared.messaging.connection import (
    RedisClient,
    check_partitions,
    is_cluster,
    redis_client,
    stream_broker,
)
from shared.messaging.delivery import (
    DeadLetter,
    DeliveryRules,
    EntryId,
    Fields,
    HeldBackError,
    Retry,
    Uncounted,
    acknowledged_despite,
    dead_letter_fields,
    decode,
)
from shared.runtime.faults import crash_point
from shared.runtime.metrics import (
    consumer_lag,
    consumer_pending,
    events_consumed,
    events_dead_lettered,
)
from shared.runtime.settings import Settings

log = logging.getLogger(__name__)

EventBatchHandler = Callable[[Sequence[Event]], Awaitable[None]]
"""Applies decoded events in one transaction, idempotently; raising leaves them pending."""


@dataclass
class StreamStats:
    """What one consumer did on one stream since it started."""

    consumed: int = 0
    dead_lettered: int = 0
    reclaimed: int = 0
    failed_batches: int = 0
    groups_recreated: int = 0
    last_applied_entry_id: str | None = None
    lag: int | None = None
    pending: int | None = None


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class GroupConsumer:
    """One consumer of a group over one or more streams; see the module docstring."""

    @classmethod
    def from_settings(
        cls, settings: Settings, *, group: str, handlers: Mapping[str, EventBatchHandler]
    ) -> GroupConsumer:
        """The consumer a service runs, tuned by its CDTT_* settings."""
        return cls(
            redis_url=settings.require_redis_url(),
            group=group,
            handlers=handlers,
            namespace=settings.stream_namespace,
            cluster=settings.redis_cluster,
            partitions=settings.stream_partitions,
            batch_size=settings.consumer_batch_size,
            reclaim_idle_ms=settings.reclaim_idle_ms,
            max_deliveries=settings.max_deliveries,
        )

    def __init__(
        self,
        *,
        redis_url: str,
        group: str,
        handlers: Mapping[str, EventBatchHandler],
        namespace: str = "",
        cluster: bool | None = False,
        partitions: int = 1,
        consumer_name: str | None = None,
        batch_size: int = 500,
        reclaim_idle_ms: int = 10_000,
        max_deliveries: int = 5,
        block_ms: int = 500,
        supervise_seconds: float = 0.25,
        graceful_timeout: float = 15.0,
    ) -> None:
        if not handlers:
            raise ValueError("a GroupConsumer needs at least one stream handler")
        self.group = group
        self.consumer_name = consumer_name or default_consumer_name()
        self._redis_url = redis_url
        self._handlers = dict(handlers)
        self._cluster = cluster
        # Which keys hold each stream is known once start() knows the kind of server.
        self._layout = StreamLayout(namespace=namespace, partitions=partitions)
        # Bounded batches: one handler transaction never holds more than batch_size events.
        # Measured here (bench/consumer_drain.py, 50k entries, batch 500, median of 3, on 2
        # cores shared with other test suites): 0.48-0.64x the rate of a raw redis-py
        # XREADGROUP+XACK loop, 0.67-0.79x the same loop when it also decodes the envelopes
        # (best run: 27.6k vs 43k and 35k events/s). Most of the time in all three is
        # redis-py's pure-Python reply parsing (profiled).
        self._batch_size = batch_size
        self._reclaim_idle_ms = reclaim_idle_ms
        self._rules = DeliveryRules(max_deliveries)
        self._block_ms = block_ms
        self._supervise_seconds = supervise_seconds
        self._graceful_timeout = graceful_timeout
        # Readers and reclaimers of one stream's partitions never run its handler at once.
        self._locks = {stream: asyncio.Lock() for stream in self._handlers}
        self._stats = {stream: StreamStats() for stream in self._handlers}
        self._redis: RedisClient | None = None
        self._broker: RedisBroker | None = None
        self._subscribers: list[Any] = []
        self._reclaimers: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def stats(self) -> Mapping[str, StreamStats]:
        """Per logical stream name."""
        return self._stats

    async def start(self) -> None:
        """Create missing groups at "0", then start the readers, reclaimers and supervisor."""
        self._stopping = False
        cluster = await is_cluster(self._redis_url, self._cluster)
        self._layout = StreamLayout(
            namespace=self._layout.namespace, partitions=self._layout.partitions, cluster=cluster
        )
        self._redis = redis_client(self._redis_url, cluster=cluster)
        await check_partitions(self._redis, self._layout)
        await self._ensure_groups()
        await self._start_broker()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"consumer-{self.group}")

    async def stop(self) -> None:
        """Stop reading; the batch in hand finishes and is acked, or stays pending."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._stop_broker()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def healthy(self) -> bool:
        """False once a reader, reclaimer or the supervisor has stopped (readiness uses it)."""
        supervising = self._supervisor is not None and not self._supervisor.done()
        return not self._stopping and supervising and self._readers_running()

    def _readers_running(self) -> bool:
        return (
            bool(self._subscribers)
            and all(sub.running for sub in self._subscribers)
            and bool(self._reclaimers)
            and not any(task.done() for task in self._reclaimers)
        )

    async def delivered_all(self, stream: str) -> bool:
        """Every entry of `stream` so far was delivered to this group at least once."""
        for key in self._layout.keys(stream):
            last = _text((await self._client.xinfo_stream(key))["last-generated-id"])
            groups = await self._client.xinfo_groups(key)
            info = next((g for g in groups if _text(g["name"]) == self.group), None)
            if info is None or _text(info["last-delivered-id"]) != last:
                return False
        return True

    # --- setup -------------------------------------------------------------------------

    async def _ensure_groups(self) -> list[str]:
        """Create each missing group at "0" so a new group reads the whole history."""
        created = []
        for stream, key in self._all_keys():
            try:
                await self._client.xgroup_create(key, self.group, id="0", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
            else:
                created.append(stream)
        return list(dict.fromkeys(created))

    def _all_keys(self) -> list[tuple[str, str]]:
        """(logical stream, key) for every partition of every stream this consumer reads."""
        return [(stream, key) for stream in self._handlers for key in self._layout.keys(stream)]

    async def _start_broker(self) -> None:
        broker = stream_broker(
            self._redis_url,
            cluster=self._layout.cluster,
            log_level=logging.DEBUG,
            graceful_timeout=self._graceful_timeout,
        )
        subscribers: list[Any] = []
        for stream, key in self._all_keys():
            reader = broker.subscriber(
                stream=StreamSub(
                    key,
                    group=self.group,
                    consumer=self.consumer_name,
                    batch=True,
                    max_records=self._batch_size,
                    polling_interval=self._block_ms,
                    # The group exists already (created at "0" above); never let
                    # FastStream create it at "$".
                    declare=False,
                ),
                ack_policy=AckPolicy.MANUAL,
                parser=self._raw_batch,
                decoder=_no_body,
            )
            reader(self._batch_subscriber(stream, key))
            subscribers.append(reader)
        try:
            await broker.start()
        except BaseException:
            await broker.stop()
            raise
        self._broker, self._subscribers = broker, subscribers
        self._reclaimers = [
            asyncio.create_task(self._reclaim(stream, key), name=f"reclaim-{self.group}-{key}")
            for stream, key in self._all_keys()
        ]

    async def _stop_broker(self) -> None:
        reclaimers, self._reclaimers = self._reclaimers, []
        for task in reclaimers:
            task.cancel()
        # A reclaimer that died of an unexpected error has logged nothing yet: say it here.
        for outcome in await asyncio.gather(*reclaimers, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("a reclaimer of %s failed", self.group, exc_info=outcome)
        broker, self._broker, self._subscribers = self._broker, None, []
        if broker is not None:
            await broker.stop()

    # FastStream's stream parsers turn every entry into JSON and its decoder parses it
    # back; we read the raw fields and ids anyway, so these pass-through hooks skip that
    # work (it cost ~15% of the drain rate here). With no body to cast, nothing FastStream
    # fails to validate can strand an entry: every one reaches the dead-letter decision.
    # Acks are ours (XACK after the handler returned), so the message's own ack is inert.
    async def _raw_batch(self, raw: Any) -> RawBatchMessage:
        return RawBatchMessage(raw, b"", consumer=FAKE_CONSUMER, group=self.group)

    def _batch_subscriber(self, stream: str, key: str) -> Callable[..., Awaitable[None]]:
        async def on_batch(body: Any, message: RedisBatchStreamMessage) -> None:
            raw = message.raw_message
            await self._apply_batch(stream, key, raw["message_ids"], raw["data"])

        on_batch.__name__ = f"read_{_name(key)}"
        return on_batch

    async def _reclaim(self, stream: str, key: str) -> None:
        """XAUTOCLAIM up to batch_size entries idle reclaim_idle_ms, apply them, repeat.

        Ends only on NOGROUP (Redis lost the stream): the supervisor then recreates the
        group and starts a new reclaimer, as it does for a stopped reader.
        """
        pause = min(1000, max(50, self._reclaim_idle_ms // 4)) / 1000
        start: EntryId = b"0-0"
        while True:
            try:
                reply: Any = await self._client.xautoclaim(
                    key,
                    self.group,
                    self.consumer_name,
                    self._reclaim_idle_ms,
                    start_id=start,
                    count=self._batch_size,
                )
                next_id, claimed = reply[0], reply[1]
                # Entries deleted from the stream meanwhile come back without fields.
                entries = [(i, f) for i, f in claimed if i is not None and f is not None]
                if entries:
                    await self._apply_reclaimed(stream, key, entries)
            except ResponseError as error:
                if "NOGROUP" in str(error):
                    log.warning("reclaimer of %s stopped: %s", key, error)
                    return
                log.warning("reclaiming from %s failed; retrying", key, exc_info=True)
                next_id, entries = b"0-0", []
            except (RedisError, OSError):
                log.warning("reclaiming from %s failed; retrying", key, exc_info=True)
                next_id, entries = b"0-0", []
            start = next_id
            # "0-0": the whole pending list was scanned; wait before scanning it again.
            if start in (b"0-0", "0-0") and not entries:
                await asyncio.sleep(pause)

    # --- delivery ----------------------------------------------------------------------

    async def _apply_batch(
        self, stream: str, key: str, entry_ids: Sequence[EntryId], entries: Sequence[Fields]
    ) -> None:
        decoded: list[tuple[EntryId, Event]] = []
        for entry_id, fields in zip(entry_ids, entries, strict=True):
            # XREADGROUP ">" hands out new entries only: this is their first delivery.
            outcome = decode(fields, deliveries=1)
            if isinstance(outcome, DeadLetter):
                await self._dead_letter(stream, key, entry_id, fields, outcome)
            else:
                decoded.append((entry_id, outcome))
        if not decoded:
            return
        events = [event for _, event in decoded]
        try:
            async with self._locks[stream]:
                await self._handlers[stream](events)
        except HeldBackError as held:
            log.info("%s: %s; those left pending for the reclaimer", stream, held)
            await self._ack(stream, key, acknowledged_despite(held, decoded))
            return
        except Exception:
            # Left pending: the reclaimer retries them, entry by entry if their batch
            # fails again, so a single bad entry cannot hold back the rest.
            self._stats[stream].failed_batches += 1
            log.warning(
                "handler failed on a batch of %d from %s; left pending for the reclaimer",
                len(events),
                stream,
                exc_info=True,
                extra={"stream": stream, "count": len(events)},
            )
            return
        # The fault suite kills the process here: committed, not acked, so redelivered.
        crash_point("consumer.before_ack")
        await self._ack(stream, key, decoded)

    async def _apply_reclaimed(
        self, stream: str, key: str, entries: Sequence[tuple[EntryId, Fields]]
    ) -> None:
        """A claimed batch: dead letters apart, the rest in one handler call, then acked."""
        deliveries = await self._deliveries(key, [entry_id for entry_id, _ in entries])
        tried: list[tuple[EntryId, Fields, int, Event]] = []
        for entry_id, fields in entries:
            count = deliveries.get(entry_id)
            if count is None:
                continue  # acknowledged meanwhile (by its first consumer, or dead-lettered)
            self._stats[stream].reclaimed += 1
            outcome = self._rules.before_attempt(count) or decode(fields, count)
            if isinstance(outcome, DeadLetter):
                await self._dead_letter(stream, key, entry_id, fields, outcome)
            else:
                tried.append((entry_id, fields, count, outcome))
        if not tried:
            return
        try:
            async with self._locks[stream]:
                await self._handlers[stream]([event for *_, event in tried])
        except HeldBackError as held:
            applied = [(entry_id, event) for entry_id, _, _, event in tried]
            await self._ack(stream, key, acknowledged_despite(held, applied))
            for entry_id, fields, count, event in tried:
                if event.event_id in held.event_ids:
                    await self._after_failure(stream, key, entry_id, fields, count, held)
            return
        except Exception as error:
            if len(tried) == 1:
                entry_id, fields, count, _ = tried[0]
                await self._after_failure(stream, key, entry_id, fields, count, error)
                return
            # Entry by entry: the one that fails carries its failure, the rest go through.
            for entry_id, fields, count, event in tried:
                await self._apply_one(stream, key, entry_id, fields, count, event)
            return
        await self._ack(stream, key, [(entry_id, event) for entry_id, _, _, event in tried])

    async def _apply_one(
        self,
        stream: str,
        key: str,
        entry_id: EntryId,
        fields: Fields,
        deliveries: int,
        event: Event,
    ) -> None:
        try:
            async with self._locks[stream]:
                await self._handlers[stream]([event])
        except Exception as error:
            await self._after_failure(stream, key, entry_id, fields, deliveries, error)
            return
        await self._ack(stream, key, [(entry_id, event)])

    async def _after_failure(
        self,
        stream: str,
        key: str,
        entry_id: EntryId,
        fields: Fields,
        deliveries: int,
        error: Exception,
    ) -> None:
        match self._rules.after_failure(error, deliveries):
            case DeadLetter() as letter:
                await self._dead_letter(stream, key, entry_id, fields, letter)
            case Uncounted(retry_count=retry_count):
                await self._uncount_delivery(key, entry_id, retry_count, error)
            case Retry():
                log.warning(
                    "handler failed on %s %s (delivery %d/%d); will retry",
                    key,
                    entry_id.decode(),
                    deliveries,
                    self._rules.max_deliveries,
                    exc_info=error,
                    extra={"stream": stream},
                )

    async def _ack(self, stream: str, key: str, applied: Sequence[tuple[EntryId, Event]]) -> None:
        """XACK entries whose events the handler committed; count the ones this XACK acked.

        A batch whose handler outlasts reclaim_idle_ms can have entries reclaimed (by this
        consumer's reclaimer or another's) and applied twice, harmlessly: the second
        apply finds its event_ids processed. Only the first XACK of an entry counts it,
        so `consumed` summed over a group's consumers is the number of entries applied.
        """
        if not applied:
            return
        acked = await self._client.xack(key, self.group, *(i for i, _ in applied))
        stats = self._stats[stream]
        stats.consumed += acked
        stats.last_applied_entry_id = applied[-1][0].decode()
        if acked:
            # XACK says how many, not which: when a batch lost some entries to a reclaimer
            # that acked them first, the per-type counter counts those a second time.
            for event_type, count in Counter(event.type for _, event in applied).items():
                events_consumed.labels(self.group, stream, event_type).inc(count)

    async def _uncount_delivery(
        self, key: str, entry_id: EntryId, retry_count: int, error: Exception
    ) -> None:
        """Leave the entry pending with this attempt not counted (JUSTID: no increment)."""
        log.warning(
            "not the entry's fault (%r); %s %s stays pending, delivery %d not counted",
            error,
            key,
            entry_id.decode(),
            retry_count + 1,
            extra={"stream": key},
        )
        with contextlib.suppress(RedisError):
            await self._client.xclaim(
                key,
                self.group,
                self.consumer_name,
                0,
                [entry_id],
                retrycount=retry_count,
                justid=True,
            )

    async def _deliveries(self, key: str, entry_ids: Sequence[EntryId]) -> dict[EntryId, int]:
        """Times each was delivered so far (XPENDING; XAUTOCLAIM counts as one); the
        entries no longer pending are left out. One pipeline, one round trip."""
        async with self._client.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.xpending_range(key, self.group, min=entry_id, max=entry_id, count=1)
            replies = await pipe.execute()
        return {
            entry_id: int(pending[0]["times_delivered"])
            for entry_id, pending in zip(entry_ids, replies, strict=True)
            if pending
        }

    async def _dead_letter(
        self, stream: str, key: str, entry_id: EntryId, fields: Fields, letter: DeadLetter
    ) -> None:
        """Copy the entry to its dead letters with why, then ack it: counted, never dropped."""
        letter_fields = dead_letter_fields(
            fields,
            letter,
            entry_id=entry_id,
            stream=stream,
            group=self.group,
            consumer=self.consumer_name,
        )
        record: dict[FieldT, EncodableT] = dict(letter_fields.items())
        # MULTI/EXEC: the copy and the ack happen together or not at all (one slot on a
        # cluster: see StreamLayout.dead_letter).
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(self._layout.dead_letter(key), record)
            pipe.xack(key, self.group, entry_id)
            await pipe.execute()
        self._stats[stream].dead_lettered += 1
        events_dead_lettered.labels(self.group, stream).inc()
        log.error(
            "dead-lettered %s %s: %s",
            stream,
            entry_id.decode(),
            letter.reason,
            extra={"stream": stream},
        )

    # --- supervision -------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Recover stopped subscribers (NOGROUP after Redis lost a stream) and update gauges."""
        last_gauges = 0.0
        while True:
            await asyncio.sleep(self._supervise_seconds)
            try:
                # No subscribers at all means the last recovery failed half-way.
                if not self._readers_running():
                    await self._recover()
                if time.monotonic() - last_gauges >= 1.0:
                    await self._update_gauges()
                    last_gauges = time.monotonic()
            except Exception:
                # Redis away: stay unhealthy and try again on the next tick.
                log.warning("consumer %s supervision failed; retrying", self.group, exc_info=True)

    async def _recover(self) -> None:
        log.warning("consumer %s: a subscriber stopped; recreating groups", self.group)
        await self._stop_broker()
        for stream in await self._ensure_groups():
            self._stats[stream].groups_recreated += 1
            log.warning("recreated group %s on %s at 0", self.group, stream)
        await self._start_broker()

    async def _update_gauges(self) -> None:
        for stream in self._handlers:
            infos = []
            for key in self._layout.keys(stream):
                groups = await self._client.xinfo_groups(key)
                info = next((g for g in groups if _text(g["name"]) == self.group), None)
                if info is not None:
                    infos.append(info)
            if not infos:
                continue
            stats = self._stats[stream]
            stats.pending = sum(int(info["pending"]) for info in infos)
            # Redis cannot tell a partition's lag after deletions: then neither can we.
            lags = [info.get("lag") for info in infos]
            known = [int(lag) for lag in lags if lag is not None]
            stats.lag = sum(known) if len(known) == len(lags) else None
            consumer_pending.labels(self.group, stream).set(stats.pending)
            if stats.lag is not None:
                consumer_lag.labels(self.group, stream).set(stats.lag)

    @property
    def _client(self) -> RedisClient:
        if self._redis is None:
            raise RuntimeError("GroupConsumer is not started")
        return self._redis


async def _no_body(message: Any) -> None:
    return None


def _name(key: str) -> str:
    """A subscriber's name from its key (FastStream shows it in logs)."""
    return "".join(c if c.isalnum() else "_" for c in key)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
