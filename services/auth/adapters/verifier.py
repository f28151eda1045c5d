"""Verifying a presented key against the `auth` schema, with a short in-process cache.

Each service keeps what it last read of a key for `CDTT_AUTH_CACHE_SECONDS` (2 s by
default): that bounds both how often a busy key costs a database read and how long a
revoked key still works anywhere. Unknown ids are cached too, so a flood of one made-up
key costs one read per period; concurrent misses on one id share a single read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.adapters.store import find_key
from services.auth.domain import StoredKey
from shared.runtime.db import database_reachable
from shared.web.keys import hash_matches, key_id_of
from shared.web.principal import AuthenticationError, Principal

log = logging.getLogger(__name__)

MAX_CACHED_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class _Cached:
    key: StoredKey | None
    expires: float


class KeyVerifier:
    """Keys read from the database, each trusted for `cache_seconds` after the read."""

    def __init__(
        self,
        engine: AsyncEngine,
        cache_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._reads: dict[str, asyncio.Task[StoredKey | None]] = {}

    async def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise AuthenticationError(
                "missing_api_key",
                "this endpoint needs an API key: send `Authorization: Bearer cdtt_...` "
                "(create one with `cdtt keys create`)",
            )
        key_id = key_id_of(presented)
        if key_id is None:
            raise AuthenticationError(
                "malformed_api_key", "not a cdtt API key (they read cdtt_<key id>_<secret>)"
            )
        stored = await self._read(key_id)
        if stored is None or not hash_matches(presented, stored.secret_hash):
            log.info("refused an unknown API key (key id %s)", key_id)
            raise AuthenticationError("invalid_api_key", "unknown API key")
        if stored.revoked_at is not None:
            log.warning("refused revoked API key %s", key_id)
            raise AuthenticationError(
                "api_key_revoked",
                f"API key {key_id} was revoked at {stored.revoked_at.isoformat()}",
                key_id=key_id,
            )
        return stored.principal()

    def verified(self, presented: str) -> bool:
        key_id = key_id_of(presented)
        cached = None if key_id is None else self._cache.get(key_id)
        return (
            cached is not None
            and cached.key is not None
            and cached.key.revoked_at is None
            and cached.expires > self._clock()
            and hash_matches(presented, cached.key.secret_hash)
        )

    async def reachable(self) -> bool:
        return await database_reachable(self._engine)

    async def _read(self, key_id: str) -> StoredKey | None:
        cached = self._cache.get(key_id)
        if cached is not None and cached.expires > self._clock():
            return cached.key
        read = self._reads.get(key_id)
        if read is None:
            read = asyncio.create_task(find_key(self._engine, key_id), name=f"auth-read-{key_id}")
            self._reads[key_id] = read
            read.add_done_callback(lambda done: self._remember(key_id, done))
        # Shielded: one caller giving up (client gone) does not cancel the others' read.
        return await asyncio.shield(read)

    def _remember(self, key_id: str, read: asyncio.Task[StoredKey | None]) -> None:
        self._reads.pop(key_id, None)
        if read.cancelled() or read.exception() is not None or self._cache_seconds <= 0:
            return
        if len(self._cache) >= MAX_CACHED_KEYS:
            now = self._clock()
            self._cache = {k: c for k, c in self._cache.items() if c.expires > now}
            if len(self._cache) >= MAX_CACHED_KEYS:
                self._cache.clear()
        self._cache[key_id] = _Cached(read.result(), self._clock() + self._cache_seconds)
