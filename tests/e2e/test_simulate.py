"""`cdtt simulate` against running services: bounded load, every write answered, a summary."""

from __future__ import annotations

import re

import pytest

from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


async def test_simulate_writes_villages_teams_and_support_then_sums_up(stack: Stack) -> None:
    load = await stack.cdtt("units", "load", "--edition", "2025", "--province", "01")
    assert load.returncode == 0, load.stderr
    async with stack.client("registry") as registry:
        communes = (await registry.get("/v1/units", params={"parent": "01"})).json()["items"]

    result = await stack.cdtt(
        "simulate",
        f"--registry-url={stack['registry'].url}",
        f"--activity-url={stack['activity'].url}",
        "--provinces=1",
        "--teams-per-commune=1",
        "--support-per-team=1",
        "--rate=40",
        "--duration=4",
        env={"COLUMNS": "200"},
    )

    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{stack.logs()}"
    assert f"{len(communes)} communes" in result.stdout
    assert "p99 ms" in result.stdout
    # Bounded in time: at most 40/s for 4 s were sent, and every village got its team.
    async with stack.client("registry") as registry:
        villages = []
        for commune in communes:
            listed = await registry.get("/v1/units", params={"parent": commune["code"]})
            villages += listed.json()["items"]
        teams = [
            (await registry.get("/v1/teams", params={"unit": v["code"]})).json()["items"]
            for v in villages
        ]
    assert 10 <= len(villages) <= 160
    assert sum(len(t) for t in teams) >= len(villages) - 64  # those in flight at the end
    summary = re.search(r"([\d,]+) accepted, ([\d,]+) failed", result.stdout)
    assert summary is not None, result.stdout
    assert int(summary[1].replace(",", "")) >= 2 * len(villages) - 64
    # The only refusal allowed is a 404 for a team the activity's directory has not seen yet.
    assert re.search(r"\b(4(?!04)\d\d|5\d\d): ", result.stdout) is None, result.stdout


async def test_simulate_refuses_a_target_off_this_machine(stack: Stack) -> None:
    result = await stack.cdtt("simulate", "--registry-url=http://10.1.2.3:8001", "--duration=1")
    assert result.returncode == 1
    assert "only sends load to this machine" in result.stdout
