"""The fault suite's load: support events and team changes over HTTP, every write's outcome kept.

A bounded open-loop driver (asyncio + httpx, loopback only): operations start at a fixed
rate, at most `max_in_flight` at once (past that the schedule waits: the driver never
piles up unbounded work). Each write ends in the `Ledger` as one of
- accepted: answered 2xx — it must be counted exactly once;
- refused: answered with an error (4xx/5xx), or never sent (connection refused) — it
  must not be counted;
- unanswered: sent, but the connection broke before an answer (a killed process) — it
  may be counted or not, but never twice.
Team operations on one team never overlap, so each team's expected state follows from
its answered writes alone (`TeamModel`); a team with an unanswered write is uncertain.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import httpx

from cdtt.demo.simulate import require_loopback
from shared.contracts.events.activity import CATEGORIES

Outcome = Literal["accepted", "refused", "unanswered"]
EDITION = "legacy"
# A team is used for support events only once activity has surely heard of it.
DIRECTORY_DELAY = 1.5


@dataclass
class TeamModel:
    """A team as its answered writes say it must be."""

    team_id: str
    village: str
    members: dict[str, str]  # member_id -> full_name
    created_at: float
    active: bool = True
    certain: bool = True
    busy: bool = False


@dataclass
class Ledger:
    """Every write the driver made and how it was answered."""

    support: dict[str, Outcome] = field(default_factory=dict)  # event_id -> outcome
    villages: dict[str, Outcome] = field(default_factory=dict)  # unique name -> outcome
    members_added: dict[str, Outcome] = field(default_factory=dict)  # unique full name
    teams: dict[str, TeamModel] = field(default_factory=dict)
    team_creates: dict[str, Outcome] = field(default_factory=dict)  # village code -> outcome
    writes: Counter[tuple[str, Outcome]] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    accepted_at: dict[str, list[float]] = field(
        default_factory=lambda: {"registry": [], "activity": []}
    )
    # (service, sent at, answered at, status) of every request, for faults with a window.
    answers: list[tuple[str, float, float, str]] = field(default_factory=list)
    started: float = 0.0
    stopped: float = 0.0

    def writes_per_second(self) -> float:
        """Writes answered (whatever the answer) per second of load."""
        return sum(self.writes.values()) / max(self.stopped - self.started, 1e-9)

    def record(
        self, service: str, kind: str, outcome: Outcome, status: str, count: int = 1
    ) -> None:
        self.writes[(kind, outcome)] += count
        self.statuses[status] += count
        if outcome == "accepted":
            self.accepted_at[service].append(time.monotonic())

    def total(self, outcome: Outcome) -> int:
        return sum(n for (_, o), n in self.writes.items() if o == outcome)

    def support_ids(self, outcome: Outcome) -> set[str]:
        return {event_id for event_id, o in self.support.items() if o == outcome}

    def answered_within(self, start: float, end: float) -> Counter[str]:
        """Statuses of the requests sent and answered between `start` and `end`."""
        return Counter(
            status
            for _, sent, answered, status in self.answers
            if start <= sent and answered <= end
        )

    def first_accepted_after(self, service: str, moment: float) -> float | None:
        return next((t for t in self.accepted_at[service] if t >= moment), None)


@dataclass(frozen=True)
class Mix:
    """Operations per second at rate 1 (about 300 writes/s: ~250 support, ~50 team changes)."""

    support_batches: float = 11.0  # of `batch_size` events each
    support_singles: float = 25.0
    new_teams: float = 8.0  # a village, then a team on it: two writes
    member_adds: float = 12.0
    member_removals: float = 8.0
    dissolutions: float = 2.0
    batch_size: int = 20

    def weights(self) -> dict[str, float]:
        return {
            "support_batch": self.support_batches,
            "support_single": self.support_singles,
            "new_team": self.new_teams,
            "member_add": self.member_adds,
            "member_remove": self.member_removals,
            "dissolve": self.dissolutions,
        }

    def operations_per_second(self) -> float:
        return sum(self.weights().values())


def _status(response: httpx.Response) -> tuple[Outcome, str]:
    code = response.status_code
    return ("accepted" if 200 <= code < 300 else "refused"), str(code)


def _failure(error: httpx.TransportError) -> tuple[Outcome, str]:
    # Refused connections never reached a server; anything else may have been applied.
    if isinstance(error, httpx.ConnectError):
        return "refused", "connect_error"
    return "unanswered", type(error).__name__


class LoadDriver:
    """Runs the mix at `rate` times its base rates against the two producers until stopped."""

    def __init__(
        self,
        registry_url: str,
        activity_url: str,
        communes: list[str],
        *,
        rate: float = 1.0,
        mix: Mix | None = None,
        max_in_flight: int = 32,
        headers: dict[str, str] | None = None,
        seed: int = 8,
        timeout: float = 15.0,
    ) -> None:
        for url in (registry_url, activity_url):
            require_loopback(url)
        self.ledger = Ledger()
        self.mix = mix or Mix()
        self.rate = rate
        self._communes = communes
        self._rng = random.Random(seed)
        self._names = itertools.count(1)
        self._run = uuid.uuid4().hex[:6]
        self._slots = asyncio.Semaphore(max_in_flight)
        limits = httpx.Limits(
            max_connections=max_in_flight, max_keepalive_connections=max_in_flight
        )
        self._registry = httpx.AsyncClient(
            base_url=registry_url, timeout=timeout, limits=limits, headers=headers
        )
        self._activity = httpx.AsyncClient(
            base_url=activity_url, timeout=timeout, limits=limits, headers=headers
        )
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.started = 0.0
        self.stopped = 0.0
        self.operations = 0

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.started = self.ledger.started = time.monotonic()
        self._task = asyncio.create_task(self._schedule(), name="fault-load")

    async def stop(self) -> Ledger:
        """Start nothing more, wait for the writes in flight, close the clients."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self.stopped = self.ledger.stopped = time.monotonic()
        await self._registry.aclose()
        await self._activity.aclose()
        return self.ledger

    async def run_for(self, seconds: float) -> None:
        """Let the load run this long: a phase of the case (the fault lasts it), not a wait."""
        await asyncio.sleep(seconds)

    def set_rate(self, rate: float) -> None:
        self.rate = rate

    async def _schedule(self) -> None:
        kinds = list(self.mix.weights())
        weights = list(self.mix.weights().values())
        per_second = self.mix.operations_per_second()
        next_at = time.monotonic()
        while not self._stopping.is_set():
            next_at += 1.0 / (per_second * self.rate)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(0.0, next_at - time.monotonic()))
            if self._stopping.is_set():
                return
            await self._slots.acquire()
            kind = self._rng.choices(kinds, weights)[0]
            task = asyncio.create_task(self._one(kind))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            # Behind schedule (slots were full): do not fire the missed slots at once.
            next_at = max(next_at, time.monotonic() - 1.0)

    async def _one(self, kind: str) -> None:
        try:
            self.operations += 1
            operation: dict[str, Callable[[], Awaitable[None]]] = {
                "support_batch": self._support_batch,
                "support_single": self._support_single,
                "new_team": self._new_team,
                "member_add": self._member_add,
                "member_remove": self._member_remove,
                "dissolve": self._dissolve,
            }
            await operation[kind]()
        finally:
            self._slots.release()

    # --- writes ------------------------------------------------------------------------

    async def _send(
        self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> tuple[Outcome, str, httpx.Response | None]:
        service = "registry" if client is self._registry else "activity"
        sent = time.monotonic()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.TransportError as error:
            outcome, status = _failure(error)
            self.ledger.answers.append((service, sent, time.monotonic(), status))
            return outcome, status, None
        outcome, status = _status(response)
        self.ledger.answers.append((service, sent, time.monotonic(), status))
        return outcome, status, response

    def _support_body(self, team: TeamModel) -> dict[str, Any]:
        occurred = date(2025, 1, 1) + timedelta(days=self._rng.randint(0, 300))
        return {
            "event_id": str(uuid.uuid4()),
            "team_id": team.team_id,
            "occurred_on": occurred.isoformat(),
            "category": self._rng.choice(CATEGORIES),
            "residents_helped": self._rng.randint(1, 40),
            "edition": EDITION,
        }

    def _support_teams(self) -> list[TeamModel]:
        settled = time.monotonic() - DIRECTORY_DELAY
        return [t for t in self.ledger.teams.values() if t.active and t.created_at < settled]

    async def _support_single(self) -> None:
        teams = self._support_teams()
        if not teams:
            return
        body = self._support_body(self._rng.choice(teams))
        outcome, status, _ = await self._send(
            self._activity, "POST", "/v1/support-events", json=body
        )
        self.ledger.support[body["event_id"]] = outcome
        self.ledger.record("activity", "support", outcome, status)

    async def _support_batch(self) -> None:
        teams = self._support_teams()
        if not teams:
            return
        bodies = [self._support_body(self._rng.choice(teams)) for _ in range(self.mix.batch_size)]
        outcome, status, response = await self._send(
            self._activity, "POST", "/v1/support-events:batch", json={"events": bodies}
        )
        if response is None or outcome == "refused":
            for body in bodies:
                self.ledger.support[body["event_id"]] = outcome
            self.ledger.record("activity", "support", outcome, status, len(bodies))
            return
        for item in response.json()["results"]:
            event_id = bodies[item["index"]]["event_id"]
            item_outcome: Outcome = "accepted" if item["status"] == "accepted" else "refused"
            self.ledger.support[event_id] = item_outcome
            reason = (item.get("error") or {}).get("code", item["status"])
            self.ledger.record("activity", "support", item_outcome, f"{status}:{reason}")

    def _name(self, what: str) -> str:
        return f"{what} {self._run}-{next(self._names)}"

    async def _new_team(self) -> None:
        name = self._name("Thôn Thử")
        body: dict[str, Any] = {
            "parent_code": self._rng.choice(self._communes),
            "name": name,
            "edition": EDITION,
        }
        outcome, status, response = await self._send(self._registry, "POST", "/v1/units", json=body)
        self.ledger.villages[name] = outcome
        self.ledger.record("registry", "village", outcome, status)
        if outcome != "accepted" or response is None:
            return
        village = response.json()["code"]
        members = [
            {"full_name": self._name("Lò Văn"), "role": "leader"},
            *({"full_name": self._name("Hà Thị"), "role": "member"} for _ in range(2)),
        ]
        team_body = {"unit_code": village, "members": members, "edition": EDITION}
        outcome, status, response = await self._send(
            self._registry, "POST", "/v1/teams", json=team_body
        )
        self.ledger.record("registry", "team", outcome, status)
        self.ledger.team_creates[village] = outcome
        for member in members:
            self.ledger.members_added[member["full_name"]] = outcome
        if outcome == "accepted" and response is not None:
            team = response.json()
            self.ledger.teams[team["team_id"]] = TeamModel(
                team_id=team["team_id"],
                village=village,
                members={m["member_id"]: m["full_name"] for m in team["members"]},
                created_at=time.monotonic(),
            )

    def _idle_team(self, *, min_members: int = 0) -> TeamModel | None:
        candidates = [
            t
            for t in self.ledger.teams.values()
            if t.active and not t.busy and len(t.members) >= min_members
        ]
        return self._rng.choice(candidates) if candidates else None

    async def _on_team(
        self,
        team: TeamModel,
        kind: str,
        method: str,
        url: str,
        apply: Callable[[httpx.Response], None],
        **kwargs: Any,
    ) -> Outcome:
        team.busy = True
        try:
            outcome, status, response = await self._send(self._registry, method, url, **kwargs)
            self.ledger.record("registry", kind, outcome, status)
            if outcome == "accepted" and response is not None:
                apply(response)
            elif outcome == "unanswered":
                team.certain = False
            return outcome
        finally:
            team.busy = False

    async def _member_add(self) -> None:
        team = self._idle_team()
        if team is None:
            return
        name = self._name("Giàng A")
        body = {"full_name": name, "role": "member", "edition": EDITION}

        def added(response: httpx.Response) -> None:
            team.members[response.json()["member_id"]] = name

        outcome = await self._on_team(
            team, "member_add", "POST", f"/v1/teams/{team.team_id}/members", added, json=body
        )
        self.ledger.members_added[name] = outcome

    async def _member_remove(self) -> None:
        team = self._idle_team(min_members=2)
        if team is None:
            return
        member_id = self._rng.choice(sorted(team.members))

        def removed(_: httpx.Response) -> None:
            team.members.pop(member_id, None)

        await self._on_team(
            team,
            "member_remove",
            "DELETE",
            f"/v1/teams/{team.team_id}/members/{member_id}",
            removed,
            params={"edition": EDITION},
        )

    async def _dissolve(self) -> None:
        # Keep most teams alive: support events need active teams.
        if len(self._support_teams()) < 10:
            return
        team = self._idle_team()
        if team is None:
            return

        def dissolved(_: httpx.Response) -> None:
            team.active = False

        await self._on_team(
            team,
            "dissolve",
            "POST",
            f"/v1/teams/{team.team_id}/dissolve",
            dissolved,
            json={"edition": EDITION},
        )
