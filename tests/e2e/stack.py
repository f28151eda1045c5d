"""The services as real processes, for end-to-end and fault tests: migrate, start, wait, stop.

Each process is `.venv/bin/cdtt serve <service> --port <free port>` with the test's own
database and stream namespace (the `settings` fixture), its output in a log file. A
service counts as started once GET /readyz answers 200; a process that exits before,
or a wait that times out, fails with the tail of its log. Stopping sends SIGTERM and
kills after a deadline. Use the `stack` fixture (all three services started), or
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
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from shared.runtime.settings import SERVICES, ServiceName, Settings

CDTT = str(Path(sys.executable).with_name("cdtt"))
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    """One running service process and where its output goes."""

    service: ServiceName
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        text = self.log_path.read_text("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as a crash."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.log_file.close()

    async def wait_exit(self, seconds: float) -> int | None:
        """The exit code, or None if the process still runs after `seconds`."""

        def wait() -> int | None:
            try:
                return self.process.wait(seconds)
            except subprocess.TimeoutExpired:
                return None

        return await asyncio.to_thread(wait)

    async def stop(self, grace_seconds: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait for a graceful exit; SIGKILL after `grace_seconds`."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            if await self.wait_exit(grace_seconds) is None:
                self.kill()
        code = self.process.wait()
        self.log_file.close()
        return code


class Stack:
    """Service processes sharing one test's database and stream namespace."""

    def __init__(
        self, settings: Settings, workdir: Path, *, env: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.workdir = workdir
        self.extra_env = dict(env or {})
        self.processes: dict[str, ServiceProcess] = {}

    def env(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child environment: ours, without any CDTT_* of the caller's shell."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDTT_")}
        env |= {
            "CDTT_ENV": "test",
            "CDTT_DATABASE_URL": self.settings.database_url or "",
            "CDTT_REDIS_URL": self.settings.require_redis_url(),
            "CDTT_STREAM_NAMESPACE": self.settings.stream_namespace,
            "CDTT_EDITION": self.settings.edition,
            # Entries of a killed consumer come back after a second, not ten.
            "CDTT_RECLAIM_IDLE_MS": "1000",
            # Off as the settings say (tests of behaviour), on for the security tests.
            "CDTT_AUTH": "on" if self.settings.auth else "off",
            "CDTT_AUTH_CACHE_SECONDS": str(self.settings.auth_cache_seconds),
            "CDTT_RATE_LIMIT_PER_SECOND": str(self.settings.rate_limit_per_second),
        }
        return env | self.extra_env | dict(overrides or {})

    async def cdtt(
        self, *args: str, env: Mapping[str, str] | None = None, limit_seconds: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a `cdtt` command against this stack; its output is returned, not checked."""
        process = await asyncio.create_subprocess_exec(
            CDTT,
            *args,
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
            [CDTT, *args], process.returncode or 0, out.decode(), err.decode()
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
    ) -> ServiceProcess:
        """Start `cdtt serve <service>` on a free port; by default wait until it is ready.

        `port`: a given one instead, e.g. the port of the process a test killed, so that
        clients keep their address across the restart.
        """
        name = name or service
        if name in self.processes and self.processes[name].alive():
            raise RuntimeError(f"{name} is running already")
        port = port or free_port()
        log_path = self.workdir / f"{name}-{port}.log"
        log_file = log_path.open("wb")
        process = await asyncio.to_thread(
            subprocess.Popen,
            [CDTT, "serve", service, "--port", str(port)],
            env=self.env(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, not to them
        )
        running = ServiceProcess(service, name, port, process, log_path, log_file)
        self.processes[name] = running
        if wait_ready:
            await self.wait_ready(running)
        return running

    async def wait_ready(self, running: ServiceProcess, within: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + within
        last = "no answer"
        async with httpx.AsyncClient(base_url=running.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not running.alive():
                    raise AssertionError(
                        f"{running.name} exited with {running.process.returncode} before it was "
                        f"ready; its log:\n{running.log_tail()}"
                    )
                try:
                    response = await client.get("/readyz")
                except httpx.TransportError as error:
                    last = repr(error)
                else:
                    if response.status_code == 200:
                        return
                    last = response.text
                await asyncio.sleep(0.1)
        raise AssertionError(
            f"{running.name} not ready within {within}s (last: {last}); "
            f"its log:\n{running.log_tail()}"
        )

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.processes[name]

    def client(self, name: str, timeout: float = 10.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.processes[name].url, timeout=timeout)

    def logs(self) -> str:
        """The tail of every process's log, for a failure message."""
        return "\n\n".join(
            f"--- {p.name} (port {p.port}, exit {p.process.poll()}) ---\n{p.log_tail()}"
            for p in self.processes.values()
        )

    async def stop_all(self) -> None:
        """Stop every process still running, gracefully, killing those that hang."""
        await asyncio.gather(*(p.stop() for p in self.processes.values() if not p.log_file.closed))

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
