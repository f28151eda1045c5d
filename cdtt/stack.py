"""The whole system on one machine: ports, schemas, and its processes started, awaited, stopped.

One copy of process supervision for everything that runs the services as child processes:
`cdtt up`, the end-to-end fixtures (tests/e2e/stack.py), the fault suite (tests/faults) and
`make bench`. A child runs in its own session (a Ctrl-C in the terminal reaches only the
parent, which stops its children in order), its output goes to a log that is only ever
appended to (a restarted service does not overwrite what its killed predecessor wrote),
it counts as started once its probe answers, and it is stopped with SIGTERM, then SIGKILL
after a grace period. A child that exits while it is awaited fails the wait with the tail
of its own log.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.runtime.db import engine_scope
from shared.runtime.migrations import migrate_auth, migrate_service
from shared.runtime.settings import SERVICES, ServiceName, Settings

DEFAULT_PORTS: dict[ServiceName, int] = {"registry": 8001, "activity": 8002, "aggregator": 8003}
HOST = "127.0.0.1"
DEFAULT_URLS: dict[ServiceName, str] = {s: f"http://{HOST}:{p}" for s, p in DEFAULT_PORTS.items()}
READY_TIMEOUT = 60.0
STOP_GRACE = 20.0
LOG_TAIL_LINES = 40
POLL_SECONDS = 0.1  # how often a starting process's probe is asked
PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """A process could not start or died: the message says which and why, with its log."""


async def migrate_all(settings: Settings) -> None:
    """Create or upgrade every service's schema and the API keys' (`cdtt migrate`)."""
    for service in SERVICES:
        async with engine_scope(settings.database_url_for(service), pool_size=1) as engine:
            await migrate_service(engine, service)
    async with engine_scope(settings.auth_database_url_for(), pool_size=1) as engine:
        await migrate_auth(engine)


def cdtt_command() -> list[str]:
    """How to run this same `cdtt` (the script beside the interpreter, else via Python)."""
    script = Path(sys.executable).with_name("cdtt")
    if script.exists():
        return [str(script)]
    found = shutil.which("cdtt")
    if found:
        return [found]
    return [sys.executable, "-c", "from cdtt.cli import main; main()"]


def free_port(host: str = HOST) -> int:
    """A port nothing listens on now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def service_env(
    settings: Settings, base: Mapping[str, str] | None = None, **overrides: str
) -> dict[str, str]:
    """The environment that gives a child `cdtt` the servers, namespace, edition and auth of
    `settings`: `base` (default: ours without any CDTT_* of the caller's shell), then those,
    then `overrides`."""
    if base is None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("CDTT_")}
    return {
        **base,
        "CDTT_DATABASE_URL": settings.database_url or "",
        "CDTT_REDIS_URL": settings.require_redis_url(),
        "CDTT_STREAM_NAMESPACE": settings.stream_namespace,
        "CDTT_EDITION": settings.edition,
        "CDTT_AUTH": "on" if settings.auth else "off",
        "CDTT_LOG_LEVEL": settings.log_level,
        "CDTT_STREAM_PARTITIONS": str(settings.stream_partitions),
        **(
            {}
            if settings.redis_cluster is None
            else {"CDTT_REDIS_CLUSTER": str(settings.redis_cluster).lower()}
        ),
        **overrides,
    }


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the parent itself is killed outright."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(kw_only=True)
class ChildProcess:
    """A child process and the log its output goes to (from `log_offset` on: its own part)."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path
    log_offset: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The end of what this process (not an earlier one on the same log) wrote."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self.log_offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def progress(self) -> str:
        """What the last probe saw, for a wait that timed out."""
        return ""

    def exit_message(self) -> str:
        return (
            f"{self.name} exited with code {self.process.returncode}; the end of "
            f"{self.log_path}:\n{self.log_tail()}"
        )

    def wait_exit(self, seconds: float) -> int | None:
        """The exit code, or None if the process still runs after `seconds`."""
        try:
            return self.process.wait(max(0.0, seconds))
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as a crash."""
        if self.alive():
            self.process.kill()
        self.process.wait()

    def stop(self, grace: float = STOP_GRACE) -> int:
        """SIGTERM and wait for a graceful exit; SIGKILL after `grace` seconds."""
        stop_all([self], grace)
        return self.process.wait()

    def wait_until(
        self,
        probe: Callable[[], bool],
        *,
        what: str,
        within: float = READY_TIMEOUT,
        watch: Sequence[ChildProcess] = (),
    ) -> None:
        """Ask `probe` until it holds; fail early when this process (or one of `watch`) exits."""
        deadline = time.monotonic() + within
        while True:
            for child in (self, *watch):
                if not child.alive():
                    raise StackError(child.exit_message())
            if probe():
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name}: {what} not reached within {within:.0f} s{self.progress()}; "
                    f"the end of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(POLL_SECONDS)  # the probe's polling interval, up to the deadline


def spawn(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    *,
    die_with_parent: bool = False,
) -> ChildProcess:
    """Start `argv` in its own session, its output appended to `log_path`.

    `die_with_parent` (only where the parent runs no threads: it runs code between fork and
    exec) makes the child get SIGTERM when the parent is killed outright.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        offset = log.tell()
        process = subprocess.Popen(  # noqa: S603 - our own command, no shell
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the parent only
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    return ChildProcess(
        name=name, argv=list(argv), process=process, log_path=log_path, log_offset=offset
    )


@dataclass(kw_only=True)
class ServiceProcess(ChildProcess):
    """A child serving HTTP on `host:port`, ready when `ready_path` answers 200."""

    service: ServiceName | None = None
    host: str = HOST
    port: int
    ready_path: str = "/readyz"
    last_answer: str = field(default="no answer", repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ready(self) -> bool:
        """One GET of the readiness path: True on 200."""
        try:
            answer = httpx.get(f"{self.url}{self.ready_path}", timeout=2.0)
        except httpx.HTTPError as error:
            self.last_answer = repr(error)
            return False
        self.last_answer = f"{answer.status_code} {answer.text[:200]}"
        return answer.status_code == 200

    def progress(self) -> str:
        return f" (last answer: {self.last_answer})"

    def wait_ready(self, within: float = READY_TIMEOUT, watch: Sequence[ChildProcess] = ()) -> None:
        self.wait_until(self.ready, what=f"{self.ready_path} 200", within=within, watch=watch)


def start_server(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    *,
    port: int,
    host: str = HOST,
    ready_path: str = "/readyz",
    service: ServiceName | None = None,
    die_with_parent: bool = False,
) -> ServiceProcess:
    """`argv` (which binds `host:port`) started as `spawn` does; not awaited yet."""
    child = spawn(name, argv, env, log_path, die_with_parent=die_with_parent)
    return ServiceProcess(
        name=name,
        argv=child.argv,
        process=child.process,
        log_path=log_path,
        log_offset=child.log_offset,
        service=service,
        host=host,
        port=port,
        ready_path=ready_path,
    )


def start_service(
    service: ServiceName,
    env: Mapping[str, str],
    log_dir: Path,
    *,
    port: int,
    host: str = HOST,
    name: str | None = None,
    die_with_parent: bool = False,
) -> ServiceProcess:
    """`cdtt serve <service>` on `host:port`, logging to `<log_dir>/<name>.log`."""
    name = name or service
    return start_server(
        name,
        [*cdtt_command(), "serve", service, "--host", host, "--port", str(port)],
        env,
        log_dir / f"{name}.log",
        port=port,
        host=host,
        service=service,
        die_with_parent=die_with_parent,
    )


def wait_all_ready(services: Sequence[ServiceProcess], within: float = READY_TIMEOUT) -> None:
    """Every service's readiness within one deadline; any of them exiting fails the wait."""
    deadline = time.monotonic() + within
    for service in services:
        service.wait_ready(max(0.0, deadline - time.monotonic()), watch=services)


def check_alive(children: Sequence[ChildProcess]) -> None:
    for child in children:
        if not child.alive():
            raise StackError(child.exit_message())


def stop_all[C: ChildProcess](
    children: Sequence[C], grace: float = STOP_GRACE, on_kill: Callable[[C], None] | None = None
) -> None:
    """SIGTERM to every child at once, SIGKILL to any still running after `grace`."""
    for child in children:
        if child.alive():
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        if child.wait_exit(deadline - time.monotonic()) is None:
            if on_kill is not None:
                on_kill(child)
            child.kill()
