"""Limits in front of every service's routes: request body size and requests per second.

Pure ASGI (no BaseHTTPMiddleware): it sits on every request's path, so it adds one dict
lookup and a little arithmetic, and never buffers a body.

- A body larger than CDTT_MAX_BODY_BYTES gets 413: at once when Content-Length says so,
  otherwise as soon as the bytes read pass the limit; the rest is never read.
- More than CDTT_RATE_LIMIT_PER_SECOND requests per second get 429 with Retry-After
  (only with auth on: without keys there is nothing to count per key),
  from a token bucket per API key that this process verified recently (the whole key, its
  secret included, not just its public id), else per client address (so made-up keys
  cannot mint themselves fresh buckets, nor spend someone else's). Buckets live in the
  process: N replicas allow N times the rate.
- A body that stops arriving for CDTT_BODY_TIMEOUT_SECONDS gets 408 (a slow client cannot
  hold a request open by trickling its body); after the body, nothing is timed, so the
  live stream's wait for a disconnect is left alone.
- Operations endpoints (/healthz, /readyz, /metrics) are never limited: probes must answer.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.web.keys import key_id_of

MAX_BUCKETS = 50_000
# Deeper than any request the API documents; past it a value is refused before anything
# (pydantic's serializer, the idempotency fingerprint) recurses into it.
MAX_JSON_DEPTH = 32
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def check_json_depth(value: object, limit: int = MAX_JSON_DEPTH) -> object:
    """The value unchanged; ValueError when its arrays and objects nest deeper than `limit`."""
    level: list[object] = [value]
    for depth in range(limit + 1):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return value
        if depth == limit:
            break
    raise ValueError(f"nested deeper than {limit} levels")


class BodyTimeoutError(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body stopped arriving for {seconds:g} s")


class BodyTooLargeError(HTTPException):
    """Raised from `receive` once a body passes the limit; FastAPI passes HTTPExceptions on."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes")
        self.limit = limit


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """`rate` requests per second per name, with bursts of up to one second's worth."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, name: str) -> float:
        """0 when a request may go now; else the seconds until it may."""
        now = self._clock()
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[name] = _Bucket(self.capacity, now)
        else:
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket at all.
        refill = self.capacity / self.rate
        self._buckets = {n: b for n, b in self._buckets.items() if now - b.updated < refill}
        if len(self._buckets) >= MAX_BUCKETS:
            self._buckets.clear()


def _error(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class LimitsMiddleware:
    """See the module docstring. `verified(scope, key)` says whether a key (secret included)
    was verified lately."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        rate_per_second: float | None,
        body_timeout_seconds: float = 10.0,
        verified: Callable[[Scope, str], bool] = lambda _scope, _key_id: False,
        unlimited_paths: Collection[str] = UNLIMITED_PATHS,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.buckets = None if rate_per_second is None else TokenBuckets(rate_per_second)
        self.verified = verified
        self.unlimited_paths = unlimited_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.unlimited_paths:
            await self.app(scope, receive, send)
            return
        if self.buckets is not None and (wait := self.buckets.take(self._bucket_name(scope))):
            await self._respond(
                send,
                429,
                _error("rate_limited", f"more than {self.buckets.rate:g} requests per second"),
                [(b"retry-after", str(max(1, math.ceil(wait))).encode())],
            )
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._respond(send, 413, self._too_large_body(), [(b"connection", b"close")])
            return
        if declared in (None, b"0") and _header(scope, b"transfer-encoding") is None:
            # No body to count or wait for (most reads): nothing more to do on this path.
            await self.app(scope, receive, send)
            return

        received = 0
        body_done = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(self.body_timeout_seconds):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeoutError(self.body_timeout_seconds) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_body_bytes:
                    raise BodyTooLargeError(self.max_body_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except (BodyTooLargeError, BodyTimeoutError) as error:
            # Normally the app's error handler answers; this catches a read outside a route.
            if started:
                raise
            code = "body_too_large" if error.status_code == 413 else "request_timeout"
            await self._respond(
                send, error.status_code, _error(code, error.detail), [(b"connection", b"close")]
            )

    def _bucket_name(self, scope: Scope) -> str:
        authorization = _header(scope, b"authorization")
        if authorization is not None:
            presented = authorization.decode("latin-1").removeprefix("Bearer ").strip()
            # Only a key whose secret matched picks its bucket: a key id alone is public
            # (logs, events' actor), and must not let anyone spend its owner's requests.
            key_id = key_id_of(presented)
            if key_id is not None and self.verified(scope, presented):
                return f"key:{key_id}"
        client = scope.get("client")
        return f"addr:{client[0] if client else 'unknown'}"

    def _too_large_body(self) -> bytes:
        return _error("body_too_large", BodyTooLargeError(self.max_body_bytes).detail)

    @staticmethod
    async def _respond(
        send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
