"""The services as real processes, for end-to-end and fault tests: migrate, start, wait, stop.

Each process is `cdtt serve <service> --port <free port>` with the test's own database and
stream namespace (the `settings` fixture), started, awaited and stopped by cdtt/stack.py (as
`cdtt up` and the bench run them): its output is appended to `<name>.log`, it counts as
started once GET /readyz answers 200, and a process that exits before, or a wait that times
out, fails with the tail of its own log. A process started again under the same name (a
restart after a kill) appends to the same log, so what its predecessor wrote is kept, and
`logs()` shows both. Use the `stack` fixture (all three services started), or
`Stack` directly to start services one by one, twice, with faults armed, or to kill one:

    async with Stack(settings, tmp_path) as stack:
        await stack.migrate()
        await stack.start("registry")
        aggregator = await stack.start("aggregator", env={"CDTT_FAULTS": "..."})
        async with stack.client("registry") as registry: ...
        aggregator.kill()
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest

from cdtt.stack import (
    READY_TIMEOUT,
    STOP_GRACE,
    ServiceProcess,
    cdtt_command,
    free_port,
    service_env,
    start_service,
    stop_all,
)
from shared.runtime.settings import SERVICES, ServiceName, Settings

__all__ = ["ServiceProcess", "Stack", "stack"]


class Stack:
    """Service processes sharing one test's database and stream namespace."""

    def __init__(
        self, settings: Settings, workdir: Path, *, env: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.workdir = workdir
        self.extra_env = dict(env or {})
        self.processes: dict[str, ServiceProcess] = {}  # the latest process of each name
        self.started: list[ServiceProcess] = []  # every process, restarted ones too

    def env(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child environment: ours, without any CDTT_* of the caller's shell."""
        env = service_env(
            self.settings,
            CDTT_ENV="test",
            # Entries of a killed consumer come back after a second, not ten.
            CDTT_RECLAIM_IDLE_MS="1000",
            CDTT_AUTH_CACHE_SECONDS=str(self.settings.auth_cache_seconds),
            CDTT_RATE_LIMIT_PER_SECOND=str(self.settings.rate_limit_per_second),
        )
        return env | self.extra_env | dict(overrides or {})

    async def cdtt(
        self, *args: str, env: Mapping[str, str] | None = None, limit_seconds: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a `cdtt` command against this stack; its output is returned, not checked."""
        command = [*cdtt_command(), *args]
        process = await asyncio.create_subprocess_exec(
            *command,
            env=self.env(env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), limit_seconds)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        return subprocess.CompletedProcess(
            command, process.returncode or 0, out.decode(), err.decode()
        )

    async def migrate(self) -> None:
        result = await self.cdtt("migrate")
        assert result.returncode == 0, f"cdtt migrate failed:\n{result.stdout}\n{result.stderr}"

    async def start(
        self,
        service: ServiceName,
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        wait_ready: bool = True,
        port: int | None = None,
        host: str | None = None,
    ) -> ServiceProcess:
        """Start `cdtt serve <service>` on a free port; by default wait until it is ready.

        `port`: a given one instead, e.g. the port of the process a test killed, so that
        clients keep their address across the restart.
        """
        name = name or service
        if name in self.processes and self.processes[name].alive():
            raise RuntimeError(f"{name} is running already")
        port = port or free_port()
        running = await asyncio.to_thread(
            start_service,
            service,
            self.env(env),
            self.workdir,
            port=port,
            name=name,
            **({} if host is None else {"host": host}),
        )
        self.processes[name] = running
        self.started.append(running)
        if wait_ready:
            await self.wait_ready(running)
        return running

    async def wait_ready(self, running: ServiceProcess, within: float = READY_TIMEOUT) -> None:
        await asyncio.to_thread(running.wait_ready, within)

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.processes[name]

    def client(self, name: str, timeout: float = 10.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.processes[name].url, timeout=timeout)

    def logs(self) -> str:
        """The tail of every process's log (restarted ones too), for a failure message."""
        return "\n\n".join(
            f"--- {p.name} (port {p.port}, pid {p.pid}, exit {p.process.poll()}) ---\n"
            f"{p.log_tail()}"
            for p in self.started
        )

    async def stop_all(self, grace: float = STOP_GRACE) -> None:
        """Stop every process still running, gracefully, killing those that hang."""
        await asyncio.to_thread(stop_all, self.started, grace)

    async def __aenter__(self) -> Stack:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_all()


@pytest.fixture
async def stack(settings: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    """The three services running on free ports against the test's database and namespace."""
    async with Stack(settings, tmp_path) as running:
        try:
            await running.migrate()
            for service in SERVICES:
                await running.start(service)
            yield running
        finally:
            # Shown by pytest only when the test failed.
            print(running.logs(), file=sys.stderr)
