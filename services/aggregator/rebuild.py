"""Recompute every projection from the streams' beginning into shadow tables, then swap them in.

The live figures keep being served and updated while the shadow copy is built (schema
`aggregator_rebuild`, the same tables through SQLAlchemy's schema_translate_map, the
same `apply_batch`). The swap is one transaction: it takes the swap lock exclusively
(live batches hold it shared, so none is half-way and none can start), applies the
entries added since the catch-up, then moves the live tables out and the shadow tables
in. Events the live consumer applies after the swap are in the shadow inbox already
if the rebuild read them, so they are skipped, not counted twice.

A stream that lost entries (trimmed, or Redis lost it) would rebuild figures without
their events: before swapping, every event in the live inbox must have been found on
the streams, else the rebuild refuses (the producers' outbox replay brings them back).

Events for units are counted by the live consumer's rule (`apply_batch` with
`require_known_units`): only once their unit is registered at the path they name. One
read before its unit is held back and tried again once every stream has been read; one
whose unit never came is left out and counted in the report, as the live consumer
dead-letters it. `swap=False` builds the shadow copy only to compare it with the live
figures (`cdtt check --rebuild`), and drops it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.aggregator.adapters.store import SWAP_LOCK_KEY, SqlProjectionStore
from services.aggregator.adapters.tables import REBUILT_TABLES, metadata
from services.aggregator.domain import COUNTERS, FigureKey
from services.aggregator.use_cases import apply_batch
from shared.contracts.events import Event, PoisonEntryError, decode_entry
from shared.contracts.streams import STREAMS, StreamLayout
from shared.messaging.connection import RedisClient

log = logging.getLogger(__name__)

LIVE_SCHEMA: Final = "aggregator"
SHADOW_SCHEMA: Final = "aggregator_rebuild"
RETIRED_SCHEMA: Final = "aggregator_retired"
# Held for the whole rebuild (session lock): two rebuilds never share the shadow schema.
REBUILD_LOCK_KEY: Final = 0x6364_7474_0B00


class RebuildRefusedError(RuntimeError):
    """A rebuild that would serve wrong figures, or could not start."""


@dataclass
class StreamProgress:
    stream: str
    key: str  # one partition of the stream
    after: str = "-"  # XRANGE start: "-" then "(<last id read>"
    read: int = 0
    undecodable: int = 0
    # Read before their unit was registered at the path they name: tried again at the end.
    held_back: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class RebuildReport:
    events: dict[str, int]
    undecodable: dict[str, int]
    changed_keys: int
    seconds: float
    # Events whose unit was never registered at their path: not counted (dead letters live).
    unknown_unit: dict[str, int] = field(default_factory=dict)
    # The figures rows that differed between the rebuilt and the live tables.
    changed: tuple[FigureKey, ...] = ()
    swapped: bool = True


Progress = Callable[[str, int], None]


async def _missing_events(conn: AsyncConnection) -> int:
    """Events the live projections hold that the rebuild did not find on the streams."""
    count = await conn.scalar(
        text(
            f"SELECT count(*) FROM {LIVE_SCHEMA}.processed_events live "  # noqa: S608 - our names
            f"WHERE NOT EXISTS (SELECT 1 FROM {SHADOW_SCHEMA}.processed_events rebuilt "
            "WHERE rebuilt.event_id = live.event_id)"
        )
    )
    return int(count or 0)


async def _read_batch(
    redis: RedisClient, key: str, progress: StreamProgress, count: int
) -> list[Event]:
    entries: list[Any] = await redis.xrange(key, min=progress.after, max="+", count=count) or []
    events = []
    for _entry_id, fields in entries:
        try:
            events.append(decode_entry(fields))
        except PoisonEntryError:
            # The live consumer dead-letters these; they have no effect either way.
            progress.undecodable += 1
    if entries:
        last: Any = entries[-1][0]
        progress.after = "(" + (last.decode() if isinstance(last, bytes) else last)
        progress.read += len(entries)
    return events


async def _shadow(conn: AsyncConnection) -> SqlProjectionStore:
    shadow = await conn.execution_options(schema_translate_map={LIVE_SCHEMA: SHADOW_SCHEMA})
    return SqlProjectionStore(shadow, live_channel=None)


async def _drain(
    conn: AsyncConnection,
    redis: RedisClient,
    progress: StreamProgress,
    batch_size: int,
    on_progress: Progress | None,
    *,
    commit_each: bool,
) -> None:
    """Apply the partition from `progress.after` to its current end into the shadow tables."""
    while True:
        read_before = progress.read
        events = await _read_batch(redis, progress.key, progress, batch_size)
        if progress.read == read_before:
            return
        if events:
            applied = await apply_batch(
                await _shadow(conn), progress.stream, events, require_known_units=True
            )
            progress.held_back.extend(applied.held_back)
            if commit_each:
                await conn.commit()
        if on_progress:
            on_progress(progress.stream, progress.read)


async def _retry_held_back(conn: AsyncConnection, progress: Sequence[StreamProgress]) -> None:
    """Apply the held-back events whose unit the streams read since have registered."""
    for stream_progress in progress:
        if stream_progress.held_back:
            applied = await apply_batch(
                await _shadow(conn),
                stream_progress.stream,
                stream_progress.held_back,
                require_known_units=True,
            )
            stream_progress.held_back = list(applied.held_back)


async def _prepare_shadow(conn: AsyncConnection) -> None:
    await conn.execute(text(f"DROP SCHEMA IF EXISTS {SHADOW_SCHEMA} CASCADE"))
    await conn.execute(text(f"CREATE SCHEMA {SHADOW_SCHEMA}"))
    shadow = await conn.execution_options(schema_translate_map={LIVE_SCHEMA: SHADOW_SCHEMA})
    await shadow.run_sync(metadata.create_all)
    await conn.commit()


async def _changed_keys(conn: AsyncConnection) -> list[FigureKey]:
    """Figures rows that differ between the live and the rebuilt tables."""
    old = ", ".join(f"o.{c}" for c in COUNTERS)
    new = ", ".join(f"n.{c}" for c in COUNTERS)
    rows = await conn.execute(
        text(
            f"SELECT coalesce(n.edition, o.edition) AS edition, coalesce(n.code, o.code) AS code "  # noqa: S608 - our names
            f"FROM {LIVE_SCHEMA}.figures o FULL JOIN {SHADOW_SCHEMA}.figures n "
            f"ON n.edition = o.edition AND n.code = o.code "
            f"WHERE ROW({old}) IS DISTINCT FROM ROW({new})"
        )
    )
    return [FigureKey(r.edition, r.code) for r in rows]


async def _swap(conn: AsyncConnection) -> None:
    tables = ", ".join(f"{LIVE_SCHEMA}.{t}" for t in REBUILT_TABLES)
    # All at once, in one order: a reader never holds one table while waiting for another.
    await conn.execute(text(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE"))
    await conn.execute(text(f"DROP SCHEMA IF EXISTS {RETIRED_SCHEMA} CASCADE"))
    await conn.execute(text(f"CREATE SCHEMA {RETIRED_SCHEMA}"))
    for table in REBUILT_TABLES:
        await conn.execute(text(f"ALTER TABLE {LIVE_SCHEMA}.{table} SET SCHEMA {RETIRED_SCHEMA}"))
        await conn.execute(text(f"ALTER TABLE {SHADOW_SCHEMA}.{table} SET SCHEMA {LIVE_SCHEMA}"))
    await conn.execute(text(f"DROP SCHEMA {RETIRED_SCHEMA} CASCADE"))
    await conn.execute(text(f"DROP SCHEMA {SHADOW_SCHEMA}"))


async def rebuild(
    engine: AsyncEngine,
    redis: RedisClient,
    layout: StreamLayout,
    *,
    batch_size: int = 2_000,
    accept_missing: bool = False,
    on_progress: Progress | None = None,
    swap: bool = True,
) -> RebuildReport:
    """Rebuild every projection from the streams and swap it in (with `swap=False`: only
    compare it with the live figures); see the module docstring."""
    started = time.monotonic()
    progress = [StreamProgress(stream, key) for stream in STREAMS for key in layout.keys(stream)]
    async with engine.connect() as session:
        held = await session.scalar(text(f"SELECT pg_try_advisory_lock({REBUILD_LOCK_KEY})"))
        await session.commit()
        if not held:
            raise RebuildRefusedError("another rebuild is running")
        try:
            changed = await _rebuild_and_swap(
                session, redis, progress, batch_size, on_progress, accept_missing, swap
            )
        finally:
            # On a broken connection the server has released the lock already.
            with contextlib.suppress(Exception):
                await session.rollback()
                await session.execute(text(f"SELECT pg_advisory_unlock({REBUILD_LOCK_KEY})"))
                await session.commit()
    return RebuildReport(
        events={s: sum(p.read for p in progress if p.stream == s) for s in STREAMS},
        undecodable={s: sum(p.undecodable for p in progress if p.stream == s) for s in STREAMS},
        changed_keys=len(changed),
        seconds=time.monotonic() - started,
        unknown_unit={s: sum(len(p.held_back) for p in progress if p.stream == s) for s in STREAMS},
        changed=tuple(changed),
        swapped=swap,
    )


async def _rebuild_and_swap(
    session: AsyncConnection,
    redis: RedisClient,
    progress: list[StreamProgress],
    batch_size: int,
    on_progress: Progress | None,
    accept_missing: bool,
    swap: bool,
) -> list[FigureKey]:
    await _prepare_shadow(session)
    for stream_progress in progress:
        await _drain(session, redis, stream_progress, batch_size, on_progress, commit_each=True)
    await _retry_held_back(session, progress)
    await session.commit()
    missing = await _missing_events(session)
    if missing and not accept_missing:
        await session.execute(text(f"DROP SCHEMA {SHADOW_SCHEMA} CASCADE"))
        await session.commit()
        raise RebuildRefusedError(
            f"{missing} events in the live figures are no longer on the streams (trimmed or "
            "lost): the rebuilt figures would miss them. Replay the producers' outboxes "
            "(`cdtt registry replay`, `cdtt activity replay`) and rebuild again, or pass "
            "--accept-missing to drop those events from the figures."
        )
    # The swap: no live batch runs while the last entries are applied and the tables move.
    await session.execute(text(f"SELECT pg_advisory_xact_lock({SWAP_LOCK_KEY})"))
    for stream_progress in progress:
        await _drain(session, redis, stream_progress, batch_size, on_progress, commit_each=False)
    await _retry_held_back(session, progress)
    changed = await _changed_keys(session)
    if not swap:
        await session.execute(text(f"DROP SCHEMA {SHADOW_SCHEMA} CASCADE"))
        await session.commit()
        return changed
    await _swap(session)
    # Live subscribers hear of every unit whose figures the rebuild corrected.
    await SqlProjectionStore(session).announce(changed)
    await session.commit()
    return changed


def describe(report: RebuildReport) -> Sequence[str]:
    lines = [f"{stream}: {count} entries" for stream, count in report.events.items()]
    lines += [
        f"{stream}: {n} undecodable (skipped)" for stream, n in report.undecodable.items() if n
    ]
    lines += [
        f"{stream}: {n} for units never registered at their path (not counted; the live "
        "consumer dead-letters them)"
        for stream, n in report.unknown_unit.items()
        if n
    ]
    lines.append(
        f"swapped in after {report.seconds:.1f}s; figures of {report.changed_keys} "
        "units/nations differed from the live ones"
    )
    return lines
