"""Benchmark plumbing: scratch databases and stream namespaces, service processes, statistics.

Service processes are started, awaited and stopped by cdtt/stack.py, as `cdtt up` and the
end-to-end tests run them; their output goes to BENCH_SERVER_LOG (appended) if set.

Everything `make bench` creates lives in databases named `cdtt_bench_<run>_<label>` on the
machine's PostgreSQL and in stream keys under `bench:<run>:<label>:` on its Redis, and is
dropped or deleted when the item ends (even on failure or Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import statistics
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from cdtt import stack
from shared.runtime.settings import ServiceName, Settings, libpq_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# The services under test run without API keys: with keys, the per-key rate limit
# (CDTT_RATE_LIMIT_PER_SECOND, 100/s by default) would be what the ingest figures measure.
AUTH = "off"


def database_url(base: str, name: str) -> str:
    """`base` pointing at another database on the same server (libpq form)."""
    url = make_url(libpq_url(base)).set(database=name)
    return url.render_as_string(hide_password=False)


@dataclass
class Scratch:
    """One bench run's scratch space: a migrated template database, copied per item."""

    base_url: str = field(
        default_factory=lambda: os.environ.get("CDTT_DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    redis_url: str = field(
        default_factory=lambda: os.environ.get("CDTT_REDIS_URL") or DEFAULT_REDIS_URL
    )
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    template: str | None = None

    async def _admin(self, sql: str) -> None:
        """One statement on the server's `postgres` database (CREATE/DROP DATABASE)."""
        admin = await asyncpg.connect(database_url(self.base_url, "postgres"))
        try:
            await admin.execute(sql)
        finally:
            await admin.close()

    async def prepare(self) -> None:
        """Create and migrate the template every item's database is copied from."""
        name = f"cdtt_bench_{self.run}_template"
        await self._admin(f'CREATE DATABASE "{name}"')
        self.template = name
        await stack.migrate_all(self._settings(name, ""))

    async def close(self) -> None:
        if self.template is not None:
            await self._drop(self.template)
            self.template = None

    def _settings(self, database: str, namespace: str) -> Settings:
        return Settings(
            redis_url=self.redis_url,
            database_url=database_url(self.base_url, database),
            stream_namespace=namespace,
            auth=False,
            log_level="WARNING",
            _env_file=None,
        )

    async def _drop(self, name: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextlib.asynccontextmanager
    async def space(self, label: str) -> AsyncIterator[Settings]:
        """A migrated database and a stream namespace of our own, removed afterwards."""
        if self.template is None:
            raise RuntimeError("Scratch.prepare() first")
        name = f"cdtt_bench_{self.run}_{label}"
        namespace = f"bench:{self.run}:{label}:"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        try:
            yield self._settings(name, namespace)
        finally:
            await self._drop(name)
            await delete_namespace(self.redis_url, namespace)


async def delete_namespace(redis_url: str, namespace: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{namespace}*", count=1000)]
        for start in range(0, len(keys), 500):
            await redis.delete(*keys[start : start + 500])
    finally:
        await redis.aclose()


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `cdtt serve` of the bench runs with: our servers, auth off."""
    return stack.service_env(settings, base=os.environ, CDTT_AUTH=AUTH, **extra)


free_port = stack.free_port


@dataclass(frozen=True)
class Process:
    """A server the bench started: where it answers and its process id."""

    base_url: str
    pid: int

    def rss_mb(self) -> float:
        return psutil.Process(self.pid).memory_info().rss / 1_048_576

    def cpu_seconds(self) -> float:
        """CPU time the server has used so far (user + system)."""
        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system


@contextlib.asynccontextmanager
async def server(
    name: str, argv: Sequence[str], env: Mapping[str, str], port: int, ready_path: str = "/readyz"
) -> AsyncIterator[Process]:
    """Run `argv` (which binds `port`) until the block ends; ready when `ready_path` is 200."""
    log = Path(os.environ.get("BENCH_SERVER_LOG", os.devnull))
    running = await asyncio.to_thread(
        stack.start_server, name, argv, env, log, port=port, ready_path=ready_path
    )
    try:
        await asyncio.to_thread(running.wait_ready)
        yield Process(running.url, running.pid)
    finally:
        await asyncio.to_thread(running.stop, 30.0)


def cdtt_serve(
    service: ServiceName, settings: Settings, **extra: str
) -> contextlib.AbstractAsyncContextManager[Process]:
    """`cdtt serve <service>` on a free port, as deployed (one uvicorn process)."""
    port = free_port()
    argv = [*stack.cdtt_command(), "serve", service, "--port", str(port)]
    return server(service, argv, service_env(settings, **extra), port)


# --- statistics ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the values; the largest for q=100."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


@dataclass
class Paired:
    """Runs of a measure and of its raw baseline, taken in pairs in the same bench run."""

    ours: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)

    def add(self, ours: float, baseline: float) -> None:
        self.ours.append(ours)
        self.baseline.append(baseline)

    @property
    def ratios(self) -> list[float]:
        return [o / b for o, b in zip(self.ours, self.baseline, strict=True) if b]

    @property
    def ratio(self) -> float:
        """The median of the per-pair ratios: each pair saw the same machine load."""
        return median(self.ratios)

    def as_json(self) -> dict[str, Any]:
        return {
            "ours": self.ours,
            "baseline": self.baseline,
            "ratios": self.ratios,
            "median_ours": median(self.ours),
            "median_baseline": median(self.baseline),
            "median_ratio": self.ratio,
        }


def ratio_row(
    item: str,
    measure: str,
    paired: Paired,
    baseline: str,
    target: str,
    least: float,
    note: str = "",
) -> Row:
    """The row of a measure taken in pairs against a raw baseline: rates, and the median ratio
    that meets the target at `least`."""
    return Row(
        item=item,
        measure=measure,
        ours=fmt_rate(median(paired.ours)),
        baseline=f"{fmt_rate(median(paired.baseline))} ({baseline})",
        result=f"{paired.ratio:.2f}×",
        target=target,
        met=paired.ratio >= least,
        note=note,
    )


@dataclass
class Row:
    """One line of the results table."""

    item: str
    measure: str
    ours: str
    baseline: str
    result: str
    target: str
    met: bool | None
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ItemResult:
    """What one numbered item measured: its table rows and every raw figure behind them."""

    item: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.nan


def fmt_rate(value: float, unit: str = "events/s") -> str:
    return f"{value:,.0f} {unit}"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
