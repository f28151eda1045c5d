"""`cdtt up`: servers (embedded or given), schemas, reference units, the three services, the replay.

Without CDTT_REDIS_URL / CDTT_DATABASE_URL it starts embedded Valkey and PostgreSQL with
their data under the data folder (default `.cdtt/`, kept between runs). The services run as
child processes in their own session, so Ctrl-C reaches only this process, which stops
them (SIGTERM, then SIGKILL after a grace period) before it stops the servers they use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from cdtt.embedded import EmbeddedUnavailableError
from cdtt.stack import (
    DEFAULT_PORTS,
    ServiceProcess,
    StackError,
    cdtt_command,
    check_alive,
    migrate_all,
    port_free,
    start_service,
    stop_all,
    wait_all_ready,
)
from services.registry.adapters.official_units import official_links, province_code
from shared.runtime.settings import SERVICES, ServiceName, Settings

app = typer.Typer()
console = Console(highlight=False)

REPLAYED_PROVINCES = ("15", "49", "20")  # Yên Bái, Quảng Nam, Lạng Sơn (legacy codes)


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


def load_units(provinces: Sequence[str], env: dict[str, str]) -> None:
    """Load the official legacy units of the replayed provinces and the 2025 provinces they
    went into (idempotent), so the replayed teams are placed on both maps."""
    successors = sorted(
        {
            link.new_code
            for links in official_links("legacy", [province_code(p) for p in provinces]).values()
            for link in links
            if link.level == "province"
        }
    )
    for edition, codes in (("legacy", list(provinces)), ("2025", successors)):
        args = [*cdtt_command(), "units", "load", "--edition", edition]
        for code in codes:
            args += ["--province", code]
        started = time.perf_counter()
        result = subprocess.run(args, env=env, check=False)  # noqa: S603
        if result.returncode != 0:
            raise StackError(f"`{' '.join(args[2:])}` failed with code {result.returncode}")
        console.print(
            f"{edition} units of provinces {', '.join(codes)} loaded "
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
    from services.auth.cli import new_key

    busy = [f"{name} port {port}" for name, port in ports.items() if not port_free(host, port)]
    if busy:
        raise StackError(
            f"in use: {', '.join(busy)} (another `cdtt up`?); choose others with --*-port"
        )
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    services: list[ServiceProcess] = []
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
                services.append(
                    start_service(
                        name, env, log_dir, port=ports[name], host=host, die_with_parent=True
                    )
                )
            wait_all_ready(services, ready_timeout)
            console.print(
                f"services ready in {time.perf_counter() - started:.1f} s (JSON logs in {log_dir}/)"
            )
            urls_of: dict[str, str] = {name: f"http://{host}:{ports[name]}" for name in SERVICES}
            if demo:
                from cdtt.demo.replay import replay

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
                stop_all(services, grace, on_kill=_report_kill(grace))


def _report_kill(grace: float) -> Callable[[ServiceProcess], None]:
    def report(service: ServiceProcess) -> None:
        console.print(f"[yellow]{service.name} still running after {grace:.0f} s: killed")

    return report


@app.command()
def up(
    demo: Annotated[bool, typer.Option("--demo", help="replay the 2022 reports once up")] = False,
    data_dir: Annotated[
        Path, typer.Option(envvar="CDTT_DATA_DIR", help="embedded servers' data and the logs")
    ] = Path(".cdtt"),
    host: Annotated[str, typer.Option(help="address the services bind")] = "127.0.0.1",
    registry_port: Annotated[int, typer.Option(envvar="CDTT_REGISTRY_PORT")] = DEFAULT_PORTS[
        "registry"
    ],
    activity_port: Annotated[int, typer.Option(envvar="CDTT_ACTIVITY_PORT")] = DEFAULT_PORTS[
        "activity"
    ],
    aggregator_port: Annotated[int, typer.Option(envvar="CDTT_AGGREGATOR_PORT")] = DEFAULT_PORTS[
        "aggregator"
    ],
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
    except (StackError, EmbeddedUnavailableError) as error:
        console.print(f"cdtt up: {error}", style="red", markup=False, highlight=False)
        raise typer.Exit(1) from None
