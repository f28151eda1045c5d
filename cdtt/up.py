"""`cdtt up`: servers (embedded or given), schemas, reference units, the three services, the replay.

Without CDTT_REDIS_URL / CDTT_DATABASE_URL it starts embedded Valkey and PostgreSQL with
their data under the data folder (default `.cdtt/`, kept between runs). The services run as
child processes in their own session, so Ctrl-C reaches only this process, which stops
them (SIGTERM, then SIGKILL after a grace period) before it stops the servers they use.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import typer
from rich.console import Console

from shared.runtime.settings import SERVICES, ServiceName, Settings

app = typer.Typer()
console = Console(highlight=False)

REPLAYED_PROVINCES = ("15", "49", "20")  # Yên Bái, Quảng Nam, Lạng Sơn (legacy codes)
LOG_TAIL_LINES = 25
PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """The stack could not start or a service died: the message says which and why."""


@dataclass
class Service:
    name: ServiceName
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])


def cdtt_command() -> list[str]:
    """How to run this same `cdtt` (the script beside the interpreter, else via Python)."""
    script = Path(sys.executable).with_name("cdtt")
    if script.exists():
        return [str(script)]
    found = shutil.which("cdtt")
    if found:
        return [found]
    return [sys.executable, "-c", "from cdtt.cli import main; main()"]


@contextlib.contextmanager
def server_urls(data_dir: Path) -> Iterator[tuple[str, str]]:
    """The Redis and PostgreSQL URLs: from the environment, else embedded ones started here."""
    from cdtt.embedded import embedded_postgres, embedded_valkey

    settings = Settings()
    with contextlib.ExitStack() as stack:
        started = time.perf_counter()
        redis_url = settings.redis_url
        if not redis_url:
            redis_url = stack.enter_context(embedded_valkey(data_dir / "valkey"))
        database_url = settings.database_url
        if not database_url:
            database_url = stack.enter_context(embedded_postgres(data_dir / "postgres"))
        embedded = [
            name
            for name, given in (
                ("Valkey", settings.redis_url),
                ("PostgreSQL", settings.database_url),
            )
            if not given
        ]
        if embedded:
            elapsed = time.perf_counter() - started
            console.print(
                f"embedded {' + '.join(embedded)} started in {elapsed:.2f} s (data in {data_dir}/)"
            )
        else:
            console.print("using the servers named by CDTT_REDIS_URL and CDTT_DATABASE_URL")
        try:
            yield redis_url, database_url
        finally:
            console.print("stopping the servers" if embedded else "the servers are left running")


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if `cdtt up` itself is killed outright."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_service(
    name: ServiceName, host: str, port: int, env: dict[str, str], log_dir: Path
) -> Service:
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command, no shell
            [*cdtt_command(), "serve", name, "--host", host, "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches `cdtt up` only; it stops us in order
            preexec_fn=_die_with_parent,  # no threads run at this point
        )
    return Service(name, port, process, log)


def stop_services(services: Sequence[Service], grace: float) -> None:
    """SIGTERM to every service at once, SIGKILL to any still running after `grace`."""
    for service in services:
        if service.process.poll() is None:
            service.process.terminate()
    deadline = time.monotonic() + grace
    for service in services:
        try:
            service.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            console.print(f"[yellow]{service.name} still running after {grace:.0f} s: killed")
            service.process.kill()
            service.process.wait()


def check_alive(services: Sequence[Service]) -> None:
    for service in services:
        code = service.process.poll()
        if code is not None:
            raise StackError(
                f"{service.name} exited with code {code}; the end of {service.log}:\n"
                f"{service.log_tail()}"
            )


def wait_ready(services: Sequence[Service], host: str, timeout: float) -> None:
    """Poll every service's /readyz until all answer 200; fail early if one exits."""
    deadline = time.monotonic() + timeout
    waiting = {service.name: service for service in services}
    with httpx.Client(timeout=2.0) as client:
        while waiting:
            check_alive(services)
            for name, service in list(waiting.items()):
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"http://{host}:{service.port}/readyz").status_code == 200:
                        del waiting[name]
            if time.monotonic() > deadline:
                raise StackError(
                    f"not ready within {timeout:.0f} s: {', '.join(waiting)} "
                    f"(logs in {services[0].log.parent}/)"
                )
            if waiting:
                time.sleep(0.2)  # polling interval of the readiness probe


def load_units(provinces: Sequence[str], env: dict[str, str]) -> None:
    """Load the official legacy units of the replayed provinces (idempotent)."""
    args = [*cdtt_command(), "units", "load", "--edition", "legacy"]
    for code in provinces:
        args += ["--province", code]
    started = time.perf_counter()
    result = subprocess.run(args, env=env, check=False)  # noqa: S603
    if result.returncode != 0:
        raise StackError(f"`{' '.join(args[-6:])}` failed with code {result.returncode}")
    console.print(
        f"legacy units of provinces {', '.join(provinces)} loaded "
        f"in {time.perf_counter() - started:.1f} s"
    )


def _interrupt(signum: int, _: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[Callable[[], None]]:
    """SIGTERM behaves like Ctrl-C; the yielded call makes both ignored while stopping."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _interrupt)

    def shield() -> None:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)

    try:
        yield shield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_stack(
    *,
    demo: bool,
    data_dir: Path,
    host: str,
    ports: dict[ServiceName, int],
    provinces: Sequence[str],
    ready_timeout: float,
    grace: float,
) -> None:
    from cdtt.cli import migrate_all
    from services.auth.cli import new_key

    busy = [f"{name} port {port}" for name, port in ports.items() if not port_free(host, port)]
    if busy:
        raise StackError(
            f"in use: {', '.join(busy)} (another `cdtt up`?); choose others with --*-port"
        )
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    services: list[Service] = []
    with interrupts_as_keyboard_interrupt() as shield, server_urls(data_dir) as urls:
        redis_url, database_url = urls
        env = {**os.environ, "CDTT_REDIS_URL": redis_url, "CDTT_DATABASE_URL": database_url}
        if demo:
            env["CDTT_AUTH"] = "off"
            console.print(
                "[bold red]--demo: CDTT_AUTH=off, NO AUTHENTICATION: every request is an "
                "anonymous admin. For a local demo only; never expose these ports."
            )
        try:
            settings = Settings(redis_url=redis_url, database_url=database_url)
            asyncio.run(migrate_all(settings))
            console.print(f"schemas migrated: {', '.join(SERVICES)}")
            if not demo and settings.auth:
                _, key = asyncio.run(new_key(settings, role="operator", name="cdtt up dashboard"))
                console.print("auth on; an operator key for the dashboard (shown once):")
                console.print(key, soft_wrap=True)  # never broken across lines
            load_units(provinces, env)
            for name in SERVICES:
                services.append(start_service(name, host, ports[name], env, log_dir))
            wait_ready(services, host, ready_timeout)
            console.print(
                f"services ready in {time.perf_counter() - started:.1f} s (JSON logs in {log_dir}/)"
            )
            urls_of: dict[str, str] = {name: f"http://{host}:{ports[name]}" for name in SERVICES}
            if demo:
                from cdtt.demo import replay

                asyncio.run(replay(urls_of, provinces=provinces, console=console))
                check_alive(services)
            for name in SERVICES:
                console.print(f"  {name:<11} {urls_of[name]}/docs")
            console.print(
                f"[bold]dashboard: {urls_of['aggregator']}/[/bold]  "
                f"(up in {time.perf_counter() - started:.1f} s; Ctrl-C stops everything)"
            )
            while True:
                check_alive(services)
                time.sleep(0.5)  # supervision interval: a dead service stops the whole stack
        finally:
            shield()
            if services:
                console.print("stopping the services")
                stop_services(services, grace)


@app.command()
def up(
    demo: Annotated[bool, typer.Option("--demo", help="replay the 2022 reports once up")] = False,
    data_dir: Annotated[
        Path, typer.Option(envvar="CDTT_DATA_DIR", help="embedded servers' data and the logs")
    ] = Path(".cdtt"),
    host: Annotated[str, typer.Option(help="address the services bind")] = "127.0.0.1",
    registry_port: Annotated[int, typer.Option(envvar="CDTT_REGISTRY_PORT")] = 8001,
    activity_port: Annotated[int, typer.Option(envvar="CDTT_ACTIVITY_PORT")] = 8002,
    aggregator_port: Annotated[int, typer.Option(envvar="CDTT_AGGREGATOR_PORT")] = 8003,
    province: Annotated[
        list[str] | None,
        typer.Option(help="legacy province to load and replay (repeat; default 15 49 20)"),
    ] = None,
    ready_timeout: Annotated[float, typer.Option(help="seconds to wait for /readyz")] = 60.0,
    grace: Annotated[float, typer.Option(help="seconds a service gets to stop")] = 10.0,
) -> None:
    """Run everything: servers (embedded unless CDTT_*_URL), schemas, units, the three services."""
    try:
        run_stack(
            demo=demo,
            data_dir=data_dir.resolve(),
            host=host,
            ports={
                "registry": registry_port,
                "activity": activity_port,
                "aggregator": aggregator_port,
            },
            provinces=tuple(province or REPLAYED_PROVINCES),
            ready_timeout=ready_timeout,
            grace=grace,
        )
    except KeyboardInterrupt:
        console.print("stopped")
    except StackError as error:
        console.print(f"[red]cdtt up: {error}")
        raise typer.Exit(1) from None
