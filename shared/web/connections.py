"""The HTTP connection under every service: uvicorn's protocol, guarded whatever parser runs.

uvicorn times out neither a client that sends nothing nor one that trickles its headers,
its httptools parser takes headers of any size (a 40 MB header was answered 200), and its
connection cap (`limit_concurrency`) answers 503 to everything, probes included, once
idle sockets fill it. The guard watches the raw bytes before they reach the parser, so it
holds for httptools and h11 alike:

- a request head (request line and headers, up to its blank line) longer than
  CDTT_MAX_HEADER_BYTES gets 431 and the connection is closed;
- a head not complete CDTT_HEADER_TIMEOUT_SECONDS after the connection opened (or after
  the previous response on a kept-alive connection) gets 408 and is closed; a connection
  that sent nothing is just closed;
- /healthz, /readyz and /metrics are served even at CDTT_MAX_CONNECTIONS (each is one
  quick read; the cap still holds every other path).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from shared.runtime.settings import Settings
from shared.web.limits import UNLIMITED_PATHS

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is optional for uvicorn
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

# The longest a blank line's start can hide at the end of one read: "\n" or "\n\r".
_TAIL = 2


def _head_end(window: bytes) -> int:
    """The index just past the blank line that ends a request head in `window`, else -1."""
    found = [
        index + len(mark) for mark in (b"\n\n", b"\n\r\n") if (index := window.find(mark)) >= 0
    ]
    return min(found, default=-1)


def _error_response(status: bytes, code: str, message: str) -> bytes:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


class HeadGuard(asyncio.Protocol):
    """Mixed in before one of uvicorn's HTTP protocols (see the module docstring)."""

    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 16 * 1024

    # What the uvicorn protocol this is mixed into provides.
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    scope: Any
    cycle: Any

    # Bytes of the next request head read so far; None while none is being read.
    _head_read: int | None = None
    _head_tail: bytes = b""
    _head_timer: asyncio.TimerHandle | None = None
    # The answer went out before the request's body ended (a 413, an early error): the rest
    # of that body is not a head; the next head is counted once the body has all arrived.
    _body_after_answer: bool = False
    _connection_cap: int | None = None

    @property
    def limit_concurrency(self) -> int | None:
        """uvicorn reads this once a request's path is known: probes go past the cap."""
        path = self.scope.get("path") if self.scope else None
        return None if path in UNLIMITED_PATHS else self._connection_cap

    @limit_concurrency.setter
    def limit_concurrency(self, cap: int | None) -> None:
        self._connection_cap = cap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        if self._head_read is not None:
            window = self._head_tail + data
            end = _head_end(window)
            read = self._head_read - len(self._head_tail) + (len(window) if end < 0 else end)
            if read > self.max_header_bytes:
                self._refuse(
                    b"431 Request Header Fields Too Large",
                    "headers_too_large",
                    f"the request line and headers are longer than {self.max_header_bytes:,} bytes",
                )
                return
            if end < 0:
                self._head_read = read
                self._head_tail = window[-_TAIL:]
            else:
                self._head_read = None
                self._cancel_head_timer()
        super().data_received(data)
        if self._body_after_answer and not self.cycle.more_body:
            self._body_after_answer = False
            self._head_read = 0  # the deadline set at the answer still runs
            self._head_tail = b""

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined request whose head was read already is being served
        self._await_head()
        if self.cycle is not None and self.cycle.more_body:
            self._head_read = None
            self._body_after_answer = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._head_read = 0
        self._head_tail = b""
        self._body_after_answer = False
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served: its head did arrive
        if not self._head_read:
            # Nothing was asked (or only the rest of an answered body came): nothing to answer.
            self.transport.close()
            return
        self._refuse(
            b"408 Request Timeout",
            "request_timeout",
            f"the request headers did not arrive within {self.header_timeout_seconds:g} s",
        )

    def _refuse(self, status: bytes, code: str, message: str) -> None:
        self._head_read = None
        self._cancel_head_timer()
        self.transport.write(_error_response(status, code, message))
        self.transport.close()


def guarded_protocol(settings: Settings) -> type[asyncio.Protocol]:
    """The protocol class for uvicorn's `http=`: CDTT_HTTP_PARSER's (auto: httptools when
    installed, as uvicorn chooses) with the guard and `settings`' limits."""
    parser = settings.http_parser
    if parser == "auto":
        parser = "h11" if HttpToolsProtocol is None else "httptools"
    base = H11Protocol if parser == "h11" else HttpToolsProtocol
    guarded = type(
        f"Guarded{base.__name__}",
        (HeadGuard, base),
        {
            "header_timeout_seconds": settings.header_timeout_seconds,
            "max_header_bytes": settings.max_header_bytes,
        },
    )
    return cast(type[asyncio.Protocol], guarded)
