"""HTTP load for the benches: pre-encoded HTTP/1.1 requests over keep-alive connections.

A minimal client on asyncio streams, because the client shares the machine with the
servers it measures: httpx spends several times more CPU per request than this, and
that CPU would be taken from the server under test. Each connection sends one request
and reads its whole response (Content-Length or chunked) before the next.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson


def post(url: str, path: str, body: object, headers: dict[str, str] | None = None) -> bytes:
    """One POST request with a JSON body, as bytes on the wire."""
    host = urlsplit(url).netloc
    payload = orjson.dumps(body)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def get(url: str, path: str) -> bytes:
    host = urlsplit(url).netloc
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


class Connection:
    """One keep-alive connection to `url`."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        return self._reader, self._writer

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """(status, body) of one request."""
        reader, writer = await self._open()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = head.lower()
        if b"transfer-encoding: chunked" in headers:
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            start = headers.find(b"content-length:")
            length = int(headers[start + 15 : headers.index(b"\r\n", start)]) if start >= 0 else 0
            body = await reader.readexactly(length)
        if b"connection: close" in headers:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None


@dataclass
class LoadResult:
    """What a load run saw: wall time, latency of each request (seconds), status counts."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies)


async def closed_loop(
    url: str, requests: Sequence[bytes], concurrency: int, expect: int
) -> LoadResult:
    """Send every request with `concurrency` connections, each one request at a time."""
    queue = list(reversed(requests))
    result = LoadResult(0.0)

    async def worker() -> None:
        connection = Connection(url)
        try:
            while queue:
                request = queue.pop()
                sent = time.perf_counter()
                status, body = await connection.send(request)
                result.latencies.append(time.perf_counter() - sent)
                result.statuses[status] += 1
                if status != expect:
                    raise RuntimeError(f"{status}: {body[:300]!r}")
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


async def open_loop(
    url: str,
    make_request: Callable[[int], bytes],
    rate_per_second: float,
    seconds: float,
    connections: int,
    on_answer: Callable[[int, float, int, bytes], None] | None = None,
) -> LoadResult:
    """Start request n at n / rate seconds (never earlier), for `seconds`, on a pool.

    A request waits for a free connection when all are busy: a server that falls behind
    shows as latency (measured from the planned start), not as a lower offered rate.
    """
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(Connection(url))
    result = LoadResult(0.0)
    tasks: set[asyncio.Task[None]] = set()

    async def one(n: int, planned: float) -> None:
        connection = await pool.get()
        try:
            status, body = await connection.send(make_request(n))
        finally:
            pool.put_nowait(connection)
        answered = time.perf_counter()
        result.latencies.append(answered - planned)
        result.statuses[status] += 1
        if on_answer is not None:
            on_answer(n, answered, status, body)

    started = time.perf_counter()
    total = int(rate_per_second * seconds)
    for n in range(total):
        planned = started + n / rate_per_second
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(n, planned))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - started
    while not pool.empty():
        await pool.get_nowait().close()
    return result
