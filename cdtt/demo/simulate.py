"""`cdtt simulate`: national-scale load on the 2025 edition, as many provincial systems at once.

For every commune of the first N provinces it registers K villages, a team in each, then
support events for the team; requests start at a fixed rate R (open loop, capped by the
requests in flight) until all are sent or S seconds pass. It only ever talks to this
machine (loopback addresses), and ends with accepted/failed counts and latency percentiles.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cdtt.demo.names import person_name, village_names
from cdtt.demo.provincial import ActivityUrl, RegistryUrl
from cdtt.stack import DEFAULT_URLS
from shared.contracts.events.activity import CATEGORIES
from shared.runtime.settings import Settings
from shared.web.keys import bearer_headers

app = typer.Typer()
console = Console(highlight=False)

EDITION = "2025"
DIRECTORY_LAG_RETRIES = 8  # a support event for a team activity has not heard of yet


class SimulationError(RuntimeError):
    """The simulation cannot start: the message says why."""


def require_loopback(url: str) -> None:
    """Refuse any target but this machine: load is only ever sent to loopback addresses."""
    host = urlsplit(url).hostname
    if not host:
        raise SimulationError(f"{url}: no host")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as error:
        raise SimulationError(f"{url}: cannot resolve {host}: {error}") from error
    if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        raise SimulationError(f"{url}: simulate only sends load to this machine (loopback)")


class RateLimiter:
    """Hands out start times at `rate` per second from the first call, until `deadline`."""

    def __init__(self, rate: float, duration: float) -> None:
        self.interval = 1.0 / rate
        self.duration = duration
        self.started = 0.0
        self.issued = 0

    def start(self) -> None:
        self.started = time.monotonic()

    @property
    def expired(self) -> bool:
        return time.monotonic() - self.started >= self.duration

    async def acquire(self) -> bool:
        """Wait for the next slot; False once the duration is over (send nothing more)."""
        slot = self.started + self.issued * self.interval
        self.issued += 1
        if slot - self.started >= self.duration or self.expired:
            return False
        await asyncio.sleep(max(0.0, slot - time.monotonic()))  # the open-loop schedule
        return True


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    accepted: int = 0
    failed: int = 0

    def record(self, kind: str, seconds: float, outcome: str, ok: bool) -> None:
        self.latencies[kind].append(seconds)
        self.outcomes[(kind, outcome)] += 1
        if ok:
            self.accepted += 1
        else:
            self.failed += 1


@dataclass(frozen=True)
class Village:
    commune: str
    name: str
    kind: str
    seed: str


def villages_of(communes: list[str], per_commune: int, seed: str) -> Iterator[Village]:
    """K made-up villages per commune, commune after commune (made lazily: there may be many)."""
    for commune in communes:
        rng = random.Random(f"{seed}/{commune}")  # noqa: S311 - made-up data, not secrets
        for index, (name, kind) in enumerate(village_names(rng, per_commune)):
            yield Village(commune, name, kind, f"{seed}/{commune}/{index}")


class Simulation:
    """Workers that each take a village and do its writes in order: unit, team, support."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        urls: dict[str, str],
        limiter: RateLimiter,
        support_per_team: int,
    ) -> None:
        self.client = client
        self.urls = urls
        self.limiter = limiter
        self.support_per_team = support_per_team
        self.stats = Stats()

    async def send(
        self, kind: str, service: str, path: str, body: dict[str, Any]
    ) -> httpx.Response | None:
        """One write at its slot, timed; None when the duration is over or it failed."""
        if not await self.limiter.acquire():
            return None
        started = time.perf_counter()
        try:
            response = await self.client.post(
                self.urls[service] + path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
        except httpx.HTTPError as error:
            self.stats.record(kind, time.perf_counter() - started, type(error).__name__, False)
            return None
        ok = response.status_code < 300
        self.stats.record(kind, time.perf_counter() - started, str(response.status_code), ok)
        return response

    async def worker(self, villages: Iterator[Village]) -> None:
        for village in villages:  # shared by every worker: each village is taken once
            if self.limiter.expired:
                return
            await self.village(village)

    async def village(self, village: Village) -> None:
        rng = random.Random(village.seed)  # noqa: S311 - made-up data, not secrets
        body = {
            "parent_code": village.commune,
            "name": village.name,
            "kind": village.kind,
            "edition": EDITION,
        }
        unit = await self.send("village", "registry", "/v1/units", body)
        if unit is None or unit.status_code != 201:
            return
        members = [
            {"full_name": person_name(rng), "role": "leader" if i == 0 else "member"}
            for i in range(rng.randint(3, 8))
        ]
        team_body = {"unit_code": unit.json()["code"], "members": members, "edition": EDITION}
        team = await self.send("team", "registry", "/v1/teams", team_body)
        if team is None or team.status_code != 201:
            return
        for _ in range(self.support_per_team):
            await self.support(
                {
                    "event_id": str(uuid.uuid4()),
                    "team_id": team.json()["team_id"],
                    "occurred_on": f"2025-{rng.randint(7, 12):02d}-{rng.randint(1, 28):02d}",
                    "category": rng.choice(CATEGORIES),
                    "residents_helped": rng.randint(1, 40),
                }
            )

    async def support(self, event: dict[str, Any]) -> None:
        for attempt in range(1, DIRECTORY_LAG_RETRIES + 1):
            response = await self.send("support", "activity", "/v1/support-events", event)
            if response is None or response.status_code != 404 or attempt == DIRECTORY_LAG_RETRIES:
                return
            # The team directory trails the registry (well under a second when not loaded):
            # back off 0.2, 0.4, ... 1.4 s, about 6 s in all, then count the 404 as failed.
            await asyncio.sleep(0.2 * attempt)


async def communes_of(
    client: httpx.AsyncClient, registry: str, provinces: int
) -> list[tuple[str, list[str]]]:
    """The first `provinces` provinces of the 2025 edition and their communes."""
    try:
        listed = await client.get(
            f"{registry}/v1/units", params={"level": "province", "edition": EDITION}
        )
    except httpx.TransportError as error:
        raise SimulationError(
            f"cannot reach the registry at {registry} ({error!r}); is `cdtt up` running?"
        ) from error
    listed.raise_for_status()
    codes = sorted(unit["code"] for unit in listed.json()["items"])[:provinces]
    if not codes:
        raise SimulationError(
            "the registry has no 2025 provinces; load them with `cdtt units load --edition 2025`"
        )
    answers = await asyncio.gather(
        *(
            client.get(f"{registry}/v1/units", params={"parent": c, "edition": EDITION})
            for c in codes
        )
    )
    result = []
    for code, answer in zip(codes, answers, strict=True):
        answer.raise_for_status()
        result.append((code, sorted(unit["code"] for unit in answer.json()["items"])))
    return result


def percentile(values: list[float], share: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(share * 1000) - 1]


def summary(stats: Stats, elapsed: float) -> Table:
    table = Table(title=f"{stats.accepted:,} accepted, {stats.failed:,} failed in {elapsed:.1f} s")
    for column in ("request", "sent", "answers", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column in ("request", "answers") else "right")
    for kind, values in stats.latencies.items():
        answers = ", ".join(
            f"{outcome}: {count:,}"
            for (of_kind, outcome), count in sorted(stats.outcomes.items())
            if of_kind == kind
        )
        table.add_row(
            kind,
            f"{len(values):,}",
            answers,
            *(f"{percentile(values, q) * 1000:.1f}" for q in (0.5, 0.9, 0.99)),
            f"{max(values) * 1000:.1f}",
        )
    return table


async def simulate_load(
    *,
    registry_url: str,
    activity_url: str,
    provinces: int,
    teams_per_commune: int,
    rate: float,
    duration: float,
    support_per_team: int,
    in_flight: int,
) -> Stats:
    for url in (registry_url, activity_url):
        require_loopback(url)
    urls = {"registry": registry_url.rstrip("/"), "activity": activity_url.rstrip("/")}
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    headers = bearer_headers(Settings().api_key)  # CDTT_API_KEY when auth is on
    async with httpx.AsyncClient(timeout=30.0, limits=limits, headers=headers) as client:
        targets = await communes_of(client, urls["registry"], provinces)
        communes = [commune for _, listed in targets for commune in listed]
        planned = len(communes) * teams_per_commune * (2 + support_per_team)
        console.print(
            f"{len(targets)} provinces, {len(communes):,} communes, "
            f"{len(communes) * teams_per_commune:,} villages with a team: {planned:,} requests "
            f"at {rate:g}/s for at most {duration:g} s"
        )
        limiter = RateLimiter(rate, duration)
        simulation = Simulation(client, urls, limiter, support_per_team)
        villages = villages_of(communes, teams_per_commune, seed=uuid.uuid4().hex[:8])
        total = min(planned, int(rate * duration))
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("starting", total=total)

            def show() -> None:
                stats = simulation.stats
                progress.update(
                    task,
                    completed=stats.accepted + stats.failed,
                    description=f"accepted {stats.accepted:,}  failed {stats.failed:,}",
                )

            async def refresh() -> None:
                while True:
                    show()
                    await asyncio.sleep(0.2)  # refresh interval of the live line

            refresher = asyncio.create_task(refresh())
            limiter.start()
            started = time.perf_counter()
            try:
                await asyncio.gather(*(simulation.worker(villages) for _ in range(in_flight)))
            finally:
                refresher.cancel()
            elapsed = time.perf_counter() - started
            show()
    console.print(summary(simulation.stats, elapsed))
    return simulation.stats


@app.command()
def simulate(
    provinces: Annotated[int, typer.Option(min=1, max=34, help="2025 provinces to cover")] = 1,
    teams_per_commune: Annotated[
        int, typer.Option(min=1, max=50, help="villages (each with a team) per commune")
    ] = 1,
    rate: Annotated[float, typer.Option(min=0.1, max=5000, help="requests started per s")] = 50,
    duration: Annotated[float, typer.Option(min=1, max=3600, help="seconds, at most")] = 30,
    support_per_team: Annotated[int, typer.Option(min=0, max=100)] = 2,
    in_flight: Annotated[int, typer.Option(min=1, max=512, help="requests in flight")] = 64,
    registry_url: RegistryUrl = DEFAULT_URLS["registry"],
    activity_url: ActivityUrl = DEFAULT_URLS["activity"],
) -> None:
    """Load the registry and activity like many provinces at once (2025 edition; loopback only)."""
    try:
        stats = asyncio.run(
            simulate_load(
                registry_url=registry_url,
                activity_url=activity_url,
                provinces=provinces,
                teams_per_commune=teams_per_commune,
                rate=rate,
                duration=duration,
                support_per_team=support_per_team,
                in_flight=in_flight,
            )
        )
    except (SimulationError, httpx.HTTPError) as error:
        console.print(f"[red]cdtt simulate: {error}")
        raise typer.Exit(1) from None
    if stats.accepted == 0:
        raise typer.Exit(1)
