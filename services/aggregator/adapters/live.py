"""Committed figure changes → live subscribers: LISTEN for batches' NOTIFYs, read, fan out.

Every applied batch NOTIFYs the keys it changed (delivered at commit, whichever
aggregator process applied it), so each process's subscribers see every change. Changes
arriving close together are coalesced (one read per `coalesce_seconds`), which bounds the
reads under load; a subscriber that cannot keep up is dropped (its client reconnects and
reloads) rather than holding memory or slowing the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from services.aggregator.adapters.queries import read_figures, snapshot
from services.aggregator.adapters.store import LIVE_CHANNEL
from services.aggregator.domain import FigureKey, UnitFigures
from shared.contracts.units import Edition

log = logging.getLogger(__name__)

LagProbe = Callable[[], Awaitable[int | None]]


@dataclass(frozen=True, slots=True)
class LiveUpdate:
    """New figures of the units one or more batches changed, as of a moment."""

    sequence: int
    edition: Edition
    figures: tuple[UnitFigures, ...]
    as_of: datetime
    lag_ms: int | None


class SubscriptionClosedError(Exception):
    """The feed is shutting down, or the subscriber fell too far behind."""


class Subscription:
    def __init__(self, edition: Edition, capacity: int) -> None:
        self.edition = edition
        self._queue: asyncio.Queue[LiveUpdate | None] = asyncio.Queue(capacity)
        self.closed = False

    def offer(self, update: LiveUpdate) -> bool:
        try:
            self._queue.put_nowait(update)
        except asyncio.QueueFull:
            return False
        return True

    def pending(self) -> int:
        """Updates waiting to be sent to this subscriber."""
        return self._queue.qsize()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    async def next(self, timeout: float) -> LiveUpdate | None:  # noqa: ASYNC109 - heartbeat interval
        """The next update, or None after `timeout` seconds of quiet; raises when closed."""
        if self.closed and self._queue.empty():
            raise SubscriptionClosedError
        try:
            update = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if update is None:
            raise SubscriptionClosedError
        return update


class LiveFeed:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        listen_dsn: str,
        lag_probe: LagProbe,
        channel: str = LIVE_CHANNEL,
        coalesce_seconds: float = 0.1,
        capacity: int = 256,
    ) -> None:
        self._engine = engine
        self._listen_dsn = listen_dsn
        self._lag_probe = lag_probe
        self._channel = channel
        self._coalesce = coalesce_seconds
        self._capacity = capacity
        self._changed: set[FigureKey] = set()
        self._wake = asyncio.Event()
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._sequence = 0
        self.listening = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="aggregator-live-feed")

    async def stop(self) -> None:
        self.close_subscriptions()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def close_subscriptions(self) -> None:
        """End every open stream (the server is shutting down: let its requests finish)."""
        for subscription in list(self._subscribers):
            subscription.close()
        self._subscribers.clear()

    @contextlib.asynccontextmanager
    async def subscribe(self, edition: Edition) -> AsyncIterator[Subscription]:
        subscription = Subscription(edition, self._capacity)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            edition, codes = message["edition"], message["codes"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignored a malformed live notification: %.200s", payload)
            return
        self._changed.update(FigureKey(edition, code) for code in codes)
        self._wake.set()

    async def _listen(self) -> Any:
        conn = await asyncpg.connect(self._listen_dsn)
        await conn.add_listener(self._channel, self._on_notify)
        return conn

    async def _run(self) -> None:
        listener: Any = None
        while True:
            try:
                if listener is None or listener.is_closed():
                    self.listening = False
                    listener = await self._listen()
                    self.listening = True
                await self._wake.wait()
                await asyncio.sleep(self._coalesce)  # let the batches close together coalesce
                self._wake.clear()
                changed, self._changed = self._changed, set()
                await self._publish(changed)
            except asyncio.CancelledError:
                if listener is not None and not listener.is_closed():
                    await listener.close()
                raise
            except Exception:
                log.warning("live feed failed; reconnecting", exc_info=True)
                self.listening = False
                listener = None
                await asyncio.sleep(1.0)

    async def _publish(self, changed: set[FigureKey]) -> None:
        editions = {s.edition for s in self._subscribers}
        wanted = [key for key in changed if key.edition in editions]
        if not wanted:
            return
        async with snapshot(self._engine) as conn:
            found = await read_figures(conn, wanted)
        lag = await self._lag_probe()
        as_of = datetime.now(UTC)
        for edition in sorted(editions):
            figures = tuple(f for f in found if f.key.edition == edition)
            if not figures:
                continue
            self._sequence += 1
            update = LiveUpdate(self._sequence, edition, figures, as_of, lag)
            for subscription in [s for s in self._subscribers if s.edition == edition]:
                if not subscription.offer(update):
                    log.warning(
                        "dropped a live subscriber that fell %d updates behind", self._capacity
                    )
                    subscription.close()
                    self._subscribers.discard(subscription)
