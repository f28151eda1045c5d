"""One fault case end to end: the services as processes, the load, quiet, then the exact audit.

`FaultSystem` wraps tests/e2e/stack.py's Stack for a case: start the three services,
run the load (tests/faults/load.py), restart a killed service on its old port, wait for
the system to go quiet, and `audit` it:
(a) every write answered 2xx is counted exactly once, (b) nothing refused is counted,
(c) no entry pending or undelivered and no outbox row unsent, (d) dead-lettered entries
are exactly the poison injected — with `cdtt check` (the real command) and direct reads
of the producers' tables, the aggregator's projections and the streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from services.activity.adapters import tables as activity
from services.aggregator.adapters import tables as aggregator
from services.registry.adapters import tables as registry
from shared.contracts.streams import (
    ACTIVITY_EVENTS,
    AGGREGATOR_GROUP,
    ENVELOPE_FIELD,
    READERS,
    dead_letter_key,
    stream_key,
)
from shared.runtime.settings import SERVICES, ServiceName, Settings, libpq_url
from tests.e2e.stack import ServiceProcess, Stack
from tests.faults.load import Ledger, LoadDriver
from tests.waiting import wait_until

# The audit reads every service's own tables (it must not trust the code it audits); it
# names them through their owners' definitions, so the dependency shows in the imports.
OUTBOXES: dict[ServiceName, str] = {
    "registry": registry.outbox.fullname,
    "activity": activity.outbox.fullname,
}
R_UNITS, R_TEAMS, R_MEMBERS = (
    t.fullname for t in (registry.units, registry.teams, registry.members)
)
SUPPORT_EVENTS = activity.support_events.fullname
PROCESSED, FIGURES, TEAM_STATES = (
    t.fullname for t in (aggregator.processed_events, aggregator.figures, aggregator.team_states)
)
QUIET_TIMEOUT = 120.0
EDITION = "legacy"
DeadLetters = Mapping[tuple[str, str], set[str]]  # (stream, group) -> original entry ids
Readers = Mapping[str, tuple[str, ...]]  # stream -> the groups that must have read it all


@dataclass(frozen=True)
class GroupState:
    stream: str
    group: str
    pending: int
    delivered_all: bool


@dataclass(frozen=True)
class SystemState:
    groups: list[GroupState]
    outbox_unsent: dict[str, int]

    @property
    def quiet(self) -> bool:
        return not any(self.outbox_unsent.values()) and all(
            g.pending == 0 and g.delivered_all for g in self.groups
        )


def entry_id(text: str) -> tuple[int, int]:
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


async def group_states(
    redis: Redis, namespace: str, readers: Readers = READERS
) -> list[GroupState]:
    """Each reading group of each stream: pending entries, and whether it has read them all."""
    states = []
    for stream, groups in readers.items():
        key = stream_key(stream, namespace)
        try:
            last = _text((await redis.xinfo_stream(key))["last-generated-id"])
            infos = {_text(g["name"]): g for g in await redis.xinfo_groups(key)}
        except Exception:
            last, infos = "", {}
        for group in groups:
            info = infos.get(group)
            states.append(
                GroupState(
                    stream,
                    group,
                    int(info["pending"]) if info else -1,
                    info is not None and _text(info["last-delivered-id"]) == last,
                )
            )
    return states


@asynccontextmanager
async def connect(settings: Settings, service: ServiceName) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(libpq_url(settings.database_url_for(service)))
    try:
        yield conn
    finally:
        await conn.close()


async def outbox_unsent(settings: Settings) -> dict[str, int]:
    unsent = {}
    for service in OUTBOXES:
        async with connect(settings, service) as conn:
            unsent[service] = await conn.fetchval(
                f"SELECT count(*) FROM {OUTBOXES[service]} WHERE sent_at IS NULL"
            )
    return unsent


async def system_state(
    settings: Settings, namespace: str | None = None, readers: Readers = READERS
) -> SystemState:
    redis = Redis.from_url(settings.require_redis_url())
    try:
        groups = await group_states(redis, namespace or settings.stream_namespace, readers)
    finally:
        await redis.aclose()
    return SystemState(groups, await outbox_unsent(settings))


async def dead_letters(redis: Redis, namespace: str) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = {}
    for stream in READERS:
        entries: Any = await redis.xrange(dead_letter_key(stream, namespace))
        for _, fields in entries:
            group = _text(fields[b"group"])
            found.setdefault((stream, group), set()).add(_text(fields[b"original_id"]))
    return found


async def dead_lettered_event_ids(redis: Redis, namespace: str) -> set[str]:
    """The event ids inside every dead letter (a dead letter carries its entry's fields)."""
    ids: set[str] = set()
    for stream in READERS:
        entries: Any = await redis.xrange(dead_letter_key(stream, namespace))
        for _, fields in entries:
            ids.add(json.loads(fields[ENVELOPE_FIELD.encode()])["event_id"])
    return ids


async def add_copies(settings: Settings, count: int | None, namespace: str | None = None) -> int:
    """XADD again the newest `count` entries (None: all) of each stream, unchanged."""
    redis = Redis.from_url(settings.require_redis_url())
    added = 0
    try:
        for stream in READERS:
            key = stream_key(stream, namespace or settings.stream_namespace)
            newest: Any = await redis.xrevrange(key, count=count)
            async with redis.pipeline(transaction=False) as pipe:
                for _, fields in reversed(newest):
                    pipe.xadd(key, fields)
                added += len(await pipe.execute())
    finally:
        await redis.aclose()
    return added


@dataclass
class Audit:
    """What the audit read, for the measurements."""

    support_accepted: int
    support_counted: int
    teams_counted: int
    team_writes_accepted: int
    duplicates_absorbed: int
    dead_lettered: int
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadinessSample:
    at: float
    name: str
    pid: int
    alive: bool
    status: int | None  # of GET /readyz; None when nothing answered
    checks: dict[str, bool]


class ReadinessWatch:
    """Polls every service's /readyz and process while a fault lasts."""

    def __init__(self, stack: Stack, every: float = 0.2) -> None:
        self.stack = stack
        self.every = every
        self.samples: list[ReadinessSample] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ReadinessWatch:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                for name, process in list(self.stack.processes.items()):
                    status, checks = None, {}
                    try:
                        answer = await client.get(f"{process.url}/readyz")
                        status, checks = answer.status_code, answer.json().get("checks", {})
                    except (httpx.TransportError, ValueError):
                        pass
                    self.samples.append(
                        ReadinessSample(
                            time.monotonic(),
                            name,
                            process.pid,
                            process.alive(),
                            status,
                            checks,
                        )
                    )
                await asyncio.sleep(self.every)

    def of(self, name: str, start: float = 0.0, end: float = float("inf")) -> list[ReadinessSample]:
        return [s for s in self.samples if s.name == name and start <= s.at <= end]

    def all_green_after(self, moment: float) -> float | None:
        """Seconds from `moment` until the latest /readyz of every service was 200."""
        latest: dict[str, ReadinessSample] = {}
        for sample in self.samples:
            latest[sample.name] = sample
            complete = len(latest) == len(self.stack.processes)
            if complete and sample.at >= moment and all(s.status == 200 for s in latest.values()):
                return round(sample.at - moment, 2)
        return None

    def assert_survived(self, name: str, dependency: str, down: float, up: float) -> None:
        """One process all along (no crash, no restart), red while `dependency` was away,
        green again after."""
        samples = self.of(name)
        assert samples, f"no readiness sample of {name}"
        assert len({s.pid for s in samples}) == 1, f"{name} was restarted"
        assert all(s.alive for s in samples), f"{name} exited while {dependency} was away"
        during = self.of(name, down, up)
        assert any(s.status == 503 and s.checks.get(dependency) is False for s in during), (
            f"{name} never reported {dependency} down: {during}"
        )
        assert samples[-1].status == 200, f"{name} not ready again: {samples[-1]}"


class FaultSystem:
    """The three services of one fault case, its load, its audit and its measurements."""

    def __init__(
        self,
        settings: Settings,
        workdir: Path,
        *,
        case: str,
        attempt: int,
        measurements: list[dict[str, Any]],
    ) -> None:
        self.settings = settings
        self.aggregator_settings = settings  # where the audit reads the projections
        self.stack = Stack(settings, workdir)
        self.case = case
        self.attempt = attempt
        self._measurements = measurements
        self.facts: dict[str, Any] = {}

    async def __aenter__(self) -> FaultSystem:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.stack.stop_all()
        finally:
            print(self.stack.logs(), file=sys.stderr)  # shown by pytest only on failure

    # --- processes ---------------------------------------------------------------------

    async def start(
        self,
        services: Iterable[ServiceName] = SERVICES,
        env: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Start services side by side (each waits for its own readiness)."""
        env = env or {}
        await asyncio.gather(*(self.stack.start(s, env=env.get(s)) for s in services))

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.stack[name]

    async def restart(
        self, name: str, *, env: Mapping[str, str] | None = None, wait_ready: bool = True
    ) -> ServiceProcess:
        """Start `name` again on its old port (its old process killed if it still ran)."""
        old = self.stack[name]
        old.kill()
        assert old.service is not None, f"{name} is not a service"
        return await self.stack.start(
            old.service, name=name, port=old.port, env=env, wait_ready=wait_ready
        )

    async def killed(self, name: str, within: float = 60.0) -> None:
        """Wait for `name` to die of its armed crash point (SIGKILL)."""
        code = await asyncio.to_thread(self.stack[name].wait_exit, within)
        assert code == -9, f"{name} was not killed by its crash point (exit {code})"

    async def communes(self) -> list[str]:
        async with connect(self.settings, "registry") as conn:
            rows = await conn.fetch(
                f"SELECT code FROM {R_UNITS} WHERE edition = $1 AND level = 'commune' "
                "ORDER BY code",
                EDITION,
            )
        return [r["code"] for r in rows]

    async def load(
        self,
        *,
        rate: float = 1.0,
        headers: dict[str, str] | None = None,
        max_in_flight: int = 32,
    ) -> LoadDriver:
        driver = LoadDriver(
            self.stack["registry"].url,
            self.stack["activity"].url,
            await self.communes(),
            rate=rate,
            headers=headers,
            max_in_flight=max_in_flight,
        )
        driver.start()
        return driver

    async def under_load(
        self,
        warmup: float,
        services: Iterable[ServiceName] = SERVICES,
        env: Mapping[str, Mapping[str, str]] | None = None,
    ) -> LoadDriver:
        """`services` started, the load (at its base rate) running for `warmup` seconds."""
        await self.start(services, env)
        driver = await self.load()
        await driver.run_for(warmup)
        return driver

    async def ready(self, name: str) -> bool:
        process = self.stack[name]
        if not process.alive():
            return False
        try:
            async with httpx.AsyncClient(base_url=process.url, timeout=2.0) as client:
                return (await client.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    async def recovered(self, ledger: Ledger, since: float, within: float = 90.0) -> float:
        """Seconds from `since` until the system works again as before the fault.

        That is: every service ready, both producers answering 2xx again, and the
        aggregator caught up with every entry the streams held at `since`.
        """
        marks = await self._stream_ends()
        firsts: dict[str, float] = {}

        async def back() -> bool:
            conditions = {
                "ready": all([await self.ready(name) for name in self.stack.processes]),
                "answering": all(
                    ledger.first_accepted_after(s, since) is not None
                    for s in ("registry", "activity")
                ),
                "caught_up": await self._caught_up(marks),
            }
            for name, met in conditions.items():
                if met:
                    firsts.setdefault(name, round(time.monotonic() - since, 2))
            return all(conditions.values())

        try:
            await wait_until(back, timeout=within, interval=0.1, message="recovery")
        finally:
            self.facts["recovery"] = firsts
        return time.monotonic() - since

    async def _stream_ends(self) -> dict[str, str]:
        redis = Redis.from_url(self.settings.require_redis_url())
        try:
            ends = {}
            for stream in READERS:
                key = stream_key(stream, self.settings.stream_namespace)
                ends[key] = _text((await redis.xinfo_stream(key))["last-generated-id"])
            return ends
        finally:
            await redis.aclose()

    async def _caught_up(self, marks: Mapping[str, str]) -> bool:
        """The aggregator has read and acknowledged everything up to each mark."""
        redis = Redis.from_url(self.settings.require_redis_url())
        try:
            for key, mark in marks.items():
                groups = {_text(g["name"]): g for g in await redis.xinfo_groups(key)}
                group = groups.get(AGGREGATOR_GROUP)
                if group is None or entry_id(_text(group["last-delivered-id"])) < entry_id(mark):
                    return False
                if await redis.xpending_range(key, AGGREGATOR_GROUP, min="-", max=mark, count=1):
                    return False
            return True
        except Exception:
            return False  # Redis away, or the stream not there yet
        finally:
            await redis.aclose()

    # --- quiet and audit ---------------------------------------------------------------

    async def quiet(
        self,
        namespace: str | None = None,
        within: float = QUIET_TIMEOUT,
        readers: Readers = READERS,
    ) -> float:
        """Seconds until streams are drained, nothing pending, no outbox row unsent."""
        started = time.monotonic()
        last: list[SystemState] = []

        async def probe() -> bool:
            state = await system_state(self.settings, namespace, readers)
            last[:] = [state]
            return state.quiet

        try:
            await wait_until(probe, timeout=within, interval=0.2, message="quiet")
        except AssertionError as error:
            raise AssertionError(f"{error}: {last}\n{self.stack.logs()}") from None
        return time.monotonic() - started

    async def check(self, env: Mapping[str, str] | None = None) -> str:
        """`cdtt check`, as an operator runs it: exit 0, no difference."""
        checked = await self.stack.cdtt("check", "--edition", EDITION, env=env, limit_seconds=180)
        assert checked.returncode == 0, f"cdtt check:\n{checked.stdout}\n{checked.stderr}"
        return checked.stdout.strip()

    async def audit(
        self,
        ledger: Ledger,
        *,
        poison: DeadLetters | None = None,
        namespace: str | None = None,
        readers: Readers = READERS,
        aggregator_database_url: str | None = None,
        applied_copies_may_be_dead_lettered: bool = False,
    ) -> Audit:
        """Assert (a)-(d) of the module docstring; return what was counted.

        `namespace`, `readers`, `aggregator_database_url`: an aggregator that reads other
        streams into another database than the producers' (the out-of-order case).
        """
        namespace = namespace or self.settings.stream_namespace
        state = await system_state(self.settings, namespace, readers)
        assert state.quiet, f"(c) not quiet: {state}"
        assert all(g.pending == 0 for g in state.groups), state
        check_env: dict[str, str] = {}
        if aggregator_database_url is not None:
            check_env["CDTT_AGGREGATOR_DATABASE_URL"] = aggregator_database_url
            self.aggregator_settings = self.settings.model_copy(
                update={"aggregator_database_url": aggregator_database_url}
            )
        self.facts["check"] = await self.check(check_env)
        await self._audit_support(ledger)
        teams_accepted = await self._audit_teams(ledger)
        redis = Redis.from_url(self.settings.require_redis_url())
        try:
            found = await dead_letters(redis, namespace)
            expected = {k: v for k, v in (poison or {}).items() if v}
            if applied_copies_may_be_dead_lettered and found != expected:
                # Known defect (see the case): a replay racing the live consumer can hold a
                # copy back until it is dead-lettered while another copy is applied. Nothing
                # is lost only if every dead-lettered event was applied; count them.
                ids = await dead_lettered_event_ids(redis, namespace)
                async with connect(self.aggregator_settings, "aggregator") as conn:
                    applied = {
                        str(r["event_id"])
                        for r in await conn.fetch(
                            f"SELECT event_id FROM {PROCESSED} WHERE event_id = ANY($1::uuid[])",
                            sorted(ids),
                        )
                    }
                assert ids <= applied, f"(d) dead-lettered and never applied: {ids - applied}"
                self.facts["dead_lettered_applied_copies"] = len(ids)
            else:
                assert found == expected, f"(d) dead letters {found} != poison injected {expected}"
            added = 0
            for stream in readers:
                info = await redis.xinfo_stream(stream_key(stream, namespace))
                added += int(info["entries-added"])
        finally:
            await redis.aclose()
        async with connect(self.aggregator_settings, "aggregator") as conn:
            processed = await conn.fetchval(f"SELECT count(*) FROM {PROCESSED}")
            national = await conn.fetchrow(
                f"SELECT teams, support_events FROM {FIGURES} WHERE edition = $1 AND code = ''",
                EDITION,
            )
        aggregator_poison = sum(len(v) for (_, g), v in found.items() if g == AGGREGATOR_GROUP)
        return Audit(
            support_accepted=len(ledger.support_ids("accepted")),
            support_counted=int(national["support_events"]),
            teams_counted=int(national["teams"]),
            team_writes_accepted=teams_accepted,
            duplicates_absorbed=added - aggregator_poison - int(processed),
            dead_lettered=sum(len(v) for v in found.values()),
        )

    async def _audit_support(self, ledger: Ledger) -> None:
        accepted = ledger.support_ids("accepted")
        refused = ledger.support_ids("refused")
        unanswered = ledger.support_ids("unanswered")
        async with connect(self.settings, "activity") as conn:
            stored = {
                str(r["event_id"])
                for r in await conn.fetch(f"SELECT event_id FROM {SUPPORT_EVENTS}")
            }
        async with connect(self.aggregator_settings, "aggregator") as conn:
            applied = {
                str(r["event_id"])
                for r in await conn.fetch(
                    f"SELECT event_id FROM {PROCESSED} WHERE stream = $1",
                    ACTIVITY_EVENTS,
                )
            }
            counted = await conn.fetchval(
                f"SELECT support_events FROM {FIGURES} WHERE edition = $1 AND code = ''",
                EDITION,
            )
        assert accepted, "the load recorded no support event at all"
        assert not accepted - stored, f"(a) {len(accepted - stored)} accepted events not stored"
        assert not accepted - applied, f"(a) {len(accepted - applied)} accepted events not counted"
        assert not refused & stored, f"(b) {len(refused & stored)} refused events stored"
        assert not refused & applied, f"(b) {len(refused & applied)} refused events counted"
        assert stored <= accepted | unanswered, "events stored that the load never sent"
        assert applied == stored, "(a) the aggregator applied other events than activity holds"
        assert counted == len(stored), f"(a) counted {counted} support events, stored {len(stored)}"

    async def _audit_teams(self, ledger: Ledger) -> int:
        async with connect(self.settings, "registry") as conn:
            villages = {
                r["name"]: r["code"]
                for r in await conn.fetch(
                    f"SELECT name, code FROM {R_UNITS} WHERE edition = $1 AND level = 'village'",
                    EDITION,
                )
            }
            teams = {
                str(r["team_id"]): r
                for r in await conn.fetch(
                    "SELECT t.team_id, t.unit_code, t.status, t.version, "
                    "coalesce(array_agg(m.member_id::text) FILTER (WHERE m.member_id IS NOT NULL),"
                    " '{}') AS members "
                    # Former members keep their row with a left_on; only current ones count.
                    f"FROM {R_TEAMS} t LEFT JOIN {R_MEMBERS} m"
                    " ON m.team_id = t.team_id AND m.left_on IS NULL "
                    "GROUP BY t.team_id"
                )
            }
            member_names = {
                r["full_name"] for r in await conn.fetch(f"SELECT full_name FROM {R_MEMBERS}")
            }
        async with connect(self.aggregator_settings, "aggregator") as conn:
            states = {
                str(r["team_id"]): r
                for r in await conn.fetch(
                    f"SELECT team_id, version, status, member_count FROM {TEAM_STATES}"
                )
            }
        by_outcome = {
            o: {name for name, v in ledger.villages.items() if v == o}
            for o in ("accepted", "refused")
        }
        assert not by_outcome["accepted"] - villages.keys(), "(a) accepted villages missing"
        assert not by_outcome["refused"] & villages.keys(), "(b) refused villages registered"
        refused_members = {n for n, o in ledger.members_added.items() if o == "refused"}
        assert not refused_members & member_names, "(b) refused members registered"
        for team_id, row in teams.items():
            # Every team exactly once in the aggregator, in its newest state.
            state = states.get(team_id)
            assert state is not None, f"(a) team {team_id} not counted"
            assert (state["version"], state["status"], state["member_count"]) == (
                row["version"],
                row["status"],
                len(row["members"]),
            ), f"(a) team {team_id}: aggregator {dict(state)} vs registry {dict(row)}"
            if team_id not in ledger.teams:
                assert ledger.team_creates.get(row["unit_code"]) == "unanswered", (
                    f"(b) team {team_id} exists though its creation was not accepted"
                )
        for village, outcome in ledger.team_creates.items():
            if outcome == "refused":
                assert all(r["unit_code"] != village for r in teams.values()), (
                    f"(b) refused team on {village} exists"
                )
        for team in ledger.teams.values():
            row = teams.get(team.team_id)
            assert row is not None, f"(a) accepted team {team.team_id} missing"
            if team.certain:
                expected = ("active" if team.active else "dissolved", set(team.members))
                assert (row["status"], set(row["members"])) == expected, (
                    f"team {team.team_id}: registry {row['status']} {sorted(row['members'])} "
                    f"but its answered writes say {expected}"
                )
        return sum(
            n
            for (kind, outcome), n in ledger.writes.items()
            if outcome == "accepted" and kind != "support"
        )

    # --- measurements ------------------------------------------------------------------

    def record(
        self,
        *,
        fault: str,
        injection: str,
        ledger: Ledger,
        audit: Audit,
        recover_s: float | None,
        drain_s: float,
        **extra: Any,
    ) -> None:
        self._measurements.append(
            {
                "case": self.case,
                "attempt": self.attempt,
                "fault": fault,
                "injection": injection,
                "writes": {
                    "accepted": ledger.total("accepted"),
                    "refused": ledger.total("refused"),
                    "unanswered": ledger.total("unanswered"),
                },
                "load_seconds": round(ledger.stopped - ledger.started, 1),
                "writes_per_s": round(ledger.writes_per_second()),
                "statuses": dict(sorted(ledger.statuses.items())),
                "support_accepted": audit.support_accepted,
                "support_counted": audit.support_counted,
                "team_writes_accepted": audit.team_writes_accepted,
                "teams_counted": audit.teams_counted,
                "duplicates_absorbed": audit.duplicates_absorbed,
                "dead_lettered": audit.dead_lettered,
                "recover_s": None if recover_s is None else round(recover_s, 2),
                "drain_s": round(drain_s, 2),
                "check": self.facts.get("check", ""),
                "recovery": self.facts.get("recovery", {}),
                **extra,
            }
        )
