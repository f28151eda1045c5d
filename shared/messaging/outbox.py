"""Transactional outbox: events written with the state change, sent to streams by a relay.

A producer's use case calls `add_to_outbox` inside its own transaction, so the change
and its event commit together. The relay claims unsent rows with SKIP LOCKED (several
relays may run at once) and marks them sent in one statement, XADDs them in one pipeline,
then commits; rows are kept for the retention window so a stream can be replayed. If a
relay dies after XADD but before its commit, the rows are sent again: consumers
deduplicate by event_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.schema import SchemaItem

from shared.contracts.envelope import Envelope
from shared.contracts.streams import ENVELOPE_FIELD, StreamLayout
from shared.messaging.connection import RedisClient
from shared.runtime.faults import crash_point
from shared.runtime.metrics import events_published
from shared.runtime.settings import ServiceName, Settings, libpq_url

if TYPE_CHECKING:
    from shared.runtime.migrations import SchemaOperations

log = logging.getLogger(__name__)


def _outbox_layout() -> tuple[SchemaItem, ...]:
    """Columns, keys and indexes of an outbox: one definition for the table and its migration."""
    return (
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("stream", Text, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("envelope", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True), nullable=True),
        # Named here, not by the metadata's naming convention, so a migration makes the same.
        PrimaryKeyConstraint("id", name="pk_outbox"),
        UniqueConstraint("event_id", name="uq_outbox_event_id"),
        # What the relay claims: only unsent rows are indexed, so the index stays small.
        Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
        Index("ix_outbox_sent_at", "sent_at"),
    )


def outbox_table(metadata: MetaData) -> Table:
    """The outbox of one service, in that service's schema."""
    return Table("outbox", metadata, *_outbox_layout())


def create_outbox(op: SchemaOperations, schema: str) -> None:
    """In a migration: create the outbox `outbox_table` defines, in the service's schema.

    Migrations that ran keep what this created then: a later change to the outbox takes
    a new migration in each producer, never an edit of the layout above alone.
    """
    op.create_table("outbox", *_outbox_layout(), schema=schema)


def notify_channel(table: Table) -> str:
    return f"{table.schema}_outbox"


async def add_to_outbox(
    session: AsyncSession | AsyncConnection, table: Table, events: Sequence[Envelope]
) -> None:
    """Queue events in the caller's transaction; the relay is woken when it commits."""
    if not events:
        return
    await session.execute(
        insert(table),
        [
            {
                "stream": e.stream,
                "event_id": e.event_id,
                "event_type": e.type,
                "envelope": e.to_json(),
            }
            for e in events
        ],
    )
    # NOTIFY is delivered at commit, and not at all on rollback.
    await session.execute(text(f"NOTIFY {notify_channel(table)}"))


@dataclass
class RelayStats:
    sent: int = 0
    batches: int = 0
    purged: int = 0
    last_beat: float = field(default_factory=time.monotonic)


class OutboxRelay:
    """Sends outbox rows to their streams, woken by LISTEN/NOTIFY, polling as a fallback."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        redis: RedisClient,
        table: Table,
        listen_dsn: str,
        layout: StreamLayout = StreamLayout(),  # noqa: B008 - frozen, so safely shared
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        retention: timedelta = timedelta(hours=72),
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._table = table
        self._listen_dsn = listen_dsn
        self._layout = layout
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._retention = retention
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stats = RelayStats()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        service: ServiceName,
        engine: AsyncEngine,
        redis: RedisClient,
        layout: StreamLayout,
        table: Table,
    ) -> OutboxRelay:
        """The relay a producer runs, tuned by its CDTT_* settings."""
        return cls(
            engine=engine,
            redis=redis,
            table=table,
            listen_dsn=libpq_url(settings.database_url_for(service)),
            layout=layout,
            batch_size=settings.relay_batch_size,
            poll_seconds=settings.relay_poll_seconds,
            retention=timedelta(hours=settings.outbox_retention_hours),
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"outbox-relay-{self._table.schema}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def alive(self) -> bool:
        """Running and looped recently (a wedged relay is not alive)."""
        running = self._task is not None and not self._task.done()
        fresh = time.monotonic() - self.stats.last_beat < max(10.0, 5 * self._poll_seconds)
        return running and fresh

    async def run(self) -> None:
        listener: Any = None
        last_purge = 0.0
        while True:
            try:
                if listener is None or listener.is_closed():
                    listener = await self._listen()
                # Cleared before sending, so a NOTIFY that lands mid-batch wakes the next round.
                self._wake.clear()
                # A partial batch took every row committed before it: no second, empty
                # round trip (rows committed since have NOTIFYed, or the poll finds them).
                while await self.relay_batch() == self._batch_size:
                    self.stats.last_beat = time.monotonic()
                if time.monotonic() - last_purge > 60:
                    await self.purge()
                    last_purge = time.monotonic()
            except asyncio.CancelledError:
                if listener is not None and not listener.is_closed():
                    await listener.close()
                raise
            except Exception:
                # Database or Redis away: keep the rows, wait a full poll and try again.
                log.warning("outbox relay %s failed; retrying", self._table.schema, exc_info=True)
                if listener is not None:
                    listener.terminate()
                listener = None
                self._wake.clear()
            self.stats.last_beat = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)

    async def _listen(self) -> Any:
        conn = await asyncpg.connect(self._listen_dsn)
        await conn.add_listener(notify_channel(self._table), lambda *_: self._wake.set())
        return conn

    async def relay_batch(self) -> int:
        """Send one batch of unsent rows; returns how many were sent.

        One statement claims the rows (SKIP LOCKED) and marks them sent, uncommitted; they
        are XADDed in id order, then the mark commits. A failure before the commit leaves
        them unsent; a crash after XADD sends them again (consumers deduplicate).
        """
        t = self._table
        claimed = (
            select(t.c.id)
            .where(t.c.sent_at.is_(None))
            .order_by(t.c.id)
            .limit(self._batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(t)
                .where(t.c.id.in_(claimed))
                .values(sent_at=func.now())
                .returning(t.c.id, t.c.stream, t.c.envelope)
            )
            rows = sorted(result.all(), key=lambda row: row.id)
            if not rows:
                return 0
            crash_point("relay.before_xadd")
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(
                        self._key_of(row.stream, row.envelope), {ENVELOPE_FIELD: row.envelope}
                    )
                await pipe.execute()
            crash_point("relay.after_xadd")
        self.stats.sent += len(rows)
        self.stats.batches += 1
        for stream, count in Counter(row.stream for row in rows).items():
            events_published.labels(stream).inc(count)
        return len(rows)

    def _key_of(self, stream: str, envelope: str) -> str:
        """The partition an outbox row goes to: its event's province (unit_path[0])."""
        if self._layout.partitions == 1:
            return self._layout.keys(stream)[0]
        province: str = json.loads(envelope)["unit_path"][0]
        return self._layout.key_for(stream, province)

    async def purge(self) -> int:
        """Forget rows sent longer ago than the retention window."""
        t = self._table
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(t).where(t.c.sent_at < func.now() - self._retention))
        purged: int = result.rowcount
        self.stats.purged += purged
        return purged


async def replay_outbox(engine: AsyncEngine, table: Table, since_hours: float | None = None) -> int:
    """Mark retained rows unsent so the relay sends them again (after a stream was lost)."""
    t = table
    stmt = update(t).where(t.c.sent_at.is_not(None)).values(sent_at=None)
    if since_hours is not None:
        stmt = stmt.where(t.c.created_at >= func.now() - timedelta(hours=since_hours))
    async with engine.begin() as conn:
        result = await conn.execute(stmt)
        await conn.execute(text(f"NOTIFY {notify_channel(t)}"))
    count: int = result.rowcount
    return count


async def outbox_backlog(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        value = await conn.scalar(
            select(func.count()).select_from(table).where(table.c.sent_at.is_(None))
        )
    return int(value or 0)
