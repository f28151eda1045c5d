"""cdtt/stack.py's supervision on real child processes: logs kept across restarts, waits that
fail early with the child's own log, stops that kill what ignores SIGTERM, HTTP readiness."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from cdtt.stack import ChildProcess, StackError, free_port, spawn, start_server, stop_all

pytestmark = pytest.mark.integration

# A child that says it runs, then waits to be stopped (or ignores SIGTERM when told to).
CHILD = """
import signal, sys, time
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(sys.argv[1], "running", flush=True)
time.sleep(120)
"""


def start_child(log: Path, word: str, mode: str = "polite") -> ChildProcess:
    """A child started with its output on `log`, once it has said it runs."""
    started = spawn(word, [sys.executable, "-c", CHILD, word, mode], os.environ, log)
    started.wait_until(lambda: "running" in started.log_tail(), what="its first line")
    return started


def test_a_restart_appends_to_the_log_and_each_process_tails_its_own_part(
    tmp_path: Path,
) -> None:
    log = tmp_path / "service.log"
    first = start_child(log, "first")
    first.kill()
    second = start_child(log, "second")
    try:
        assert log.read_text().splitlines() == ["first running", "second running"]
        assert first.log_tail() == "first running\nsecond running"  # from its offset on
        assert second.log_tail() == "second running"
    finally:
        second.kill()


def test_a_wait_fails_as_soon_as_the_child_exits_with_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "print('cannot bind', flush=True); raise SystemExit(3)"]
    doomed = spawn("doomed", argv, os.environ, tmp_path / "doomed.log")
    with pytest.raises(StackError, match=r"doomed exited with code 3[\s\S]*cannot bind"):
        doomed.wait_until(lambda: False, what="never", within=120)


def test_stop_terminates_the_polite_and_kills_the_stubborn(tmp_path: Path) -> None:
    polite = start_child(tmp_path / "polite.log", "polite")
    stubborn = start_child(tmp_path / "stubborn.log", "stubborn", "stubborn")
    killed: list[str] = []
    stop_all([polite, stubborn], grace=1.0, on_kill=lambda c: killed.append(c.name))
    assert polite.process.returncode == -signal.SIGTERM
    assert stubborn.process.returncode == -signal.SIGKILL
    assert killed == ["stubborn"]


def test_a_server_counts_as_started_once_its_ready_path_answers_200(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    server = start_server(
        "http", argv, os.environ, tmp_path / "http.log", port=port, ready_path="/"
    )
    try:
        server.wait_ready(within=60)
        assert server.ready()
        assert server.last_answer.startswith("200")
    finally:
        assert server.stop(grace=10) == -signal.SIGTERM
