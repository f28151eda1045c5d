"""`cdtt up` as a developer runs it: no server URLs, so embedded Valkey and PostgreSQL.

It replays Yên Bái, the figures are read back from the aggregator, Ctrl-C stops it, and no
process is left behind; a second `cdtt up` on the same data folder shows the same figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CDTT = str(Path(sys.executable).with_name("cdtt"))
READY_LINE = "dashboard: "


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def embedded_env(data_dir: Path) -> dict[str, str]:
    """The caller's environment without any server URL, so `cdtt up` embeds its own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not (key.startswith("CDTT_") and key.endswith(("_URL", "_NAMESPACE")))
    }
    env["CDTT_DATA_DIR"] = str(data_dir)
    env["CDTT_AUTH"] = "off"  # these tests read figures keyless; --demo turns it off anyway
    return env


class Up:
    """One `cdtt up` in its own process group, as a terminal would run it."""

    def __init__(self, process: asyncio.subprocess.Process, ports: list[int]) -> None:
        self.process = process
        self.ports = ports
        self.output: list[str] = []

    @property
    def aggregator(self) -> str:
        return f"http://127.0.0.1:{self.ports[2]}"

    async def wait_for_line(self, marker: str, within: float) -> None:
        async def read() -> None:
            assert self.process.stdout is not None
            while line := await self.process.stdout.readline():
                self.output.append(line.decode(errors="replace").rstrip())
                if marker in self.output[-1]:
                    return
            raise AssertionError(f"cdtt up ended before {marker!r}:\n" + "\n".join(self.output))

        try:
            await asyncio.wait_for(read(), within)
        except TimeoutError:
            raise AssertionError(
                f"no {marker!r} in {within}s:\n" + "\n".join(self.output)
            ) from None

    def processes(self) -> list[psutil.Process]:
        """`cdtt up` and everything it started, PostgreSQL included (pg_ctl detaches it)."""
        root = psutil.Process(self.process.pid)
        found = [root, *root.children(recursive=True)]
        return found

    async def interrupt(self, within: float = 60.0) -> int:
        """Ctrl-C: SIGINT to the whole foreground process group, then wait for the exit."""
        os.killpg(self.process.pid, signal.SIGINT)
        assert self.process.stdout is not None
        rest = await asyncio.wait_for(self.process.stdout.read(), within)
        self.output += rest.decode(errors="replace").splitlines()
        return await asyncio.wait_for(self.process.wait(), within)


@asynccontextmanager
async def cdtt_up(data_dir: Path, *args: str) -> AsyncIterator[Up]:
    ports = free_ports(3)
    process = await asyncio.create_subprocess_exec(
        CDTT,
        "up",
        *args,
        "--registry-port",
        str(ports[0]),
        "--activity-port",
        str(ports[1]),
        "--aggregator-port",
        str(ports[2]),
        env=embedded_env(data_dir),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    up = Up(process, ports)
    try:
        yield up
    finally:
        if process.returncode is None:  # the test failed midway: leave nothing behind
            for child in up.processes()[1:]:
                child.kill()
            process.kill()
            await process.wait()


def postgres_of(data_dir: Path) -> psutil.Process:
    pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    return psutil.Process(pid)


def still_running(processes: list[psutil.Process]) -> list[str]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{process.pid} {' '.join(process.cmdline())}")
        except psutil.NoSuchProcess:
            continue
    return alive


def processes_in(folder: Path) -> list[psutil.Process]:
    """Every process on the machine whose command line or working folder is in `folder`."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        info: dict[str, Any] = process.info
        if str(folder) in " ".join(info["cmdline"] or []) + " " + (info["cwd"] or ""):
            found.append(process)
    return found


def using_folder(data_dir: Path) -> list[str]:
    return still_running(processes_in(data_dir))


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """The run's data folder; whatever a failed test left running in it is killed after."""
    folder = tmp_path / "data"
    yield folder
    for process in processes_in(folder):
        with contextlib.suppress(psutil.Error):
            process.kill()


async def yen_bai(aggregator: str) -> tuple[dict[str, Any], dict[str, Any]]:
    async with httpx.AsyncClient(base_url=aggregator, timeout=10) as client:
        province = await client.get("/v1/coverage/15", params={"edition": "legacy"})
        district = await client.get("/v1/coverage/136", params={"edition": "legacy"})
    assert province.status_code == 200, province.text
    assert district.status_code == 200, district.text
    return province.json(), district.json()


def assert_yen_bai_report(province: dict[str, Any], district: dict[str, Any]) -> None:
    assert province["coverage"]["district"] == {"covered": 1, "total": 9}
    assert district["coverage"]["commune"] == {"covered": 25, "total": 25}
    assert province["coverage"]["village"] == {"covered": 172, "total": 172}
    assert province["members"] == 1287
    assert province["teams"] == 1 + 25 + 172


async def test_up_on_embedded_servers_replays_then_stops_leaving_nothing(data_dir: Path) -> None:
    async with cdtt_up(data_dir, "--demo", "--province", "15") as up:
        await up.wait_for_line(READY_LINE, within=240)
        assert any("embedded Valkey + PostgreSQL started" in line for line in up.output)
        province, district = await yen_bai(up.aggregator)
        assert_yen_bai_report(province, district)
        started = [*up.processes(), postgres_of(data_dir)]
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert all(
            f"serve {service}" in names for service in ("registry", "activity", "aggregator")
        )
        assert "valkey" in names

        code = await up.interrupt()

    assert code == 0, "\n".join(up.output)
    assert up.output[-1] == "stopped"
    assert still_running(started) == []
    assert using_folder(data_dir) == []
    assert (data_dir / "valkey" / "appendonlydir").is_dir()  # Valkey kept its append-only file

    # The data stays between runs: a plain `cdtt up` shows the same figures.
    async with cdtt_up(data_dir) as again:
        await again.wait_for_line(READY_LINE, within=120)
        assert_yen_bai_report(*await yen_bai(again.aggregator))
        code = await again.interrupt()
    assert code == 0
    assert using_folder(data_dir) == []


async def test_up_killed_outright_leaves_nothing_once_it_runs_again(data_dir: Path) -> None:
    """SIGKILL gives `cdtt up` no chance to clean up: its services still get SIGTERM (they
    die with their parent), and the next `cdtt up` on the folder takes over its servers."""
    async with cdtt_up(data_dir, "--province", "15") as up:
        await up.wait_for_line(READY_LINE, within=120)
        started = [*up.processes(), postgres_of(data_dir)]
        services = [p for p in started if "serve" in p.cmdline()]
        assert len(services) == 3
        valkey = [p for p in started if "valkey" in p.name()]
        up.process.kill()
        await up.process.wait()
        _, alive = psutil.wait_procs(services, timeout=30)
        assert alive == [], still_running(alive)
    assert still_running(valkey) != []  # orphaned until the next run

    async with cdtt_up(data_dir, "--province", "15") as again:
        await again.wait_for_line(READY_LINE, within=120)
        assert still_running(valkey) == []  # it shared the append-only file: stopped
        assert postgres_of(data_dir).pid == started[-1].pid  # taken over, not doubled
        assert await again.interrupt() == 0
    assert still_running(started) == []
    assert using_folder(data_dir) == []
