"""`cdtt demo`: the 2022 reports replayed through the public HTTP API, as provincial systems would.

Villages are registered under their communes, teams created at district, commune and village
level, then support events sent in batches; the replay ends when the aggregator shows it.
Every write carries an Idempotency-Key derived from the plan, so a second run changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cdtt.report2022 import (
    ALL_PROVINCES,
    PlanError,
    ProvincePlan,
    ProvinceTree,
    SupportWrite,
    TeamWrite,
    Unit,
    VillageWrite,
    plan_province,
    reports_for,
)
from shared.auth.keys import bearer_headers
from shared.settings import Settings

app = typer.Typer()

EDITION = "legacy"
KEY_PREFIX = "demo2022"
SUPPORT_BATCH = 500
ATTEMPTS = 8  # per request, on 503 / connection errors (the services retry-safe by key)
CATCH_UP_SECONDS = 180.0  # for the activity's team directory and the aggregator


class ReplayError(RuntimeError):
    """The replay cannot go on: the message says what the services answered."""


@dataclass
class Tally:
    villages_created: int = 0
    villages_existing: int = 0
    teams_created: int = 0
    teams_existing: int = 0
    support_accepted: int = 0
    support_failed: int = 0
    failures: list[str] = field(default_factory=list)


class Api:
    """The three services' public HTTP APIs, with retries on 503 and connection errors."""

    def __init__(self, client: httpx.AsyncClient, urls: Mapping[str, str], limit: int) -> None:
        self.client = client
        self.urls = urls
        self.slots = asyncio.Semaphore(limit)

    async def call(
        self, method: str, service: str, path: str, *, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        url = self.urls[service].rstrip("/") + path
        for attempt in range(ATTEMPTS):
            try:
                async with self.slots:
                    response = await self.client.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as error:
                if attempt == ATTEMPTS - 1:
                    raise ReplayError(f"{method} {url}: {error!r}") from error
            else:
                if response.status_code not in (429, 502, 503, 504):
                    return response
            await asyncio.sleep(min(0.1 * 2**attempt, 3.0))  # back off before retrying
        return response

    async def units(self, parent: str) -> list[dict[str, Any]]:
        response = await self.call(
            "GET", "registry", "/v1/units", params={"parent": parent, "edition": EDITION}
        )
        if response.status_code == 404:
            return []
        _expect(response, 200)
        items: list[dict[str, Any]] = response.json()["items"]
        return sorted(items, key=lambda unit: unit["code"])


def _expect(response: httpx.Response, *statuses: int) -> None:
    if response.status_code not in statuses:
        raise ReplayError(
            f"{response.request.method} {response.request.url} -> {response.status_code}: "
            f"{response.text[:500]}"
        )


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


async def fetch_tree(api: Api, province: str) -> ProvinceTree:
    response = await api.call(
        "GET", "registry", f"/v1/units/{province}", params={"edition": EDITION}
    )
    if response.status_code == 404:
        raise PlanError(
            f"province {province} is not in the registry; load it with "
            f"`cdtt units load --edition legacy --province {province}`"
        )
    _expect(response, 200)
    districts = await api.units(province)
    commune_lists = await asyncio.gather(*(api.units(d["code"]) for d in districts))
    return ProvinceTree(
        code=province,
        name=response.json()["name"],
        districts=tuple(Unit(d["code"], d["name"]) for d in districts),
        communes={
            d["code"]: tuple(Unit(c["code"], c["name"]) for c in communes)
            for d, communes in zip(districts, commune_lists, strict=True)
        },
    )


def _replayed(response: httpx.Response) -> bool:
    return bool(response.headers.get("Idempotent-Replayed", "").lower() == "true")


async def register_village(api: Api, tally: Tally, village: VillageWrite) -> None:
    response = await api.call(
        "POST",
        "registry",
        "/v1/units",
        key=f"{KEY_PREFIX}:unit:{village.code}",
        json={
            "parent_code": village.parent_code,
            "name": village.name,
            "kind": village.kind,
            "code": village.code,
            "edition": EDITION,
        },
    )
    if response.status_code == 409 and _error_code(response) == "unit_code_taken":
        tally.villages_existing += 1  # registered by an earlier run whose key has expired
        return
    _expect(response, 201)
    if _replayed(response):
        tally.villages_existing += 1
    else:
        tally.villages_created += 1


async def create_team(api: Api, tally: Tally, team: TeamWrite) -> str:
    """The team's id: the new team's, or the active one an earlier run created."""
    response = await api.call(
        "POST",
        "registry",
        "/v1/teams",
        key=f"{KEY_PREFIX}:team:{team.unit_code}",
        json={
            "unit_code": team.unit_code,
            "name": team.name,
            "established_on": team.established_on.isoformat(),
            "members": [{"full_name": name, "role": role} for name, role in team.members],
            "edition": EDITION,
        },
    )
    if response.status_code == 409 and _error_code(response) == "unit_has_active_team":
        existing = await api.call(
            "GET", "registry", "/v1/teams", params={"unit": team.unit_code, "edition": EDITION}
        )
        _expect(existing, 200)
        active = [t for t in existing.json()["items"] if t["status"] == "active"]
        if not active:
            raise ReplayError(f"{team.unit_code}: 409 but no active team is listed")
        tally.teams_existing += 1
        return str(active[0]["team_id"])
    _expect(response, 201)
    if _replayed(response):
        tally.teams_existing += 1
    else:
        tally.teams_created += 1
    return str(response.json()["team_id"])


def _support_body(write: SupportWrite, team_id: str) -> dict[str, Any]:
    return {
        "event_id": str(write.event_id),
        "team_id": team_id,
        "occurred_on": write.occurred_on.isoformat(),
        "category": write.category,
        "residents_helped": write.residents_helped,
    }


def _item_accepted(result: Mapping[str, Any]) -> bool:
    status = result.get("status")
    return status in ("accepted", "duplicate", "ok") or (
        isinstance(status, int) and 200 <= status < 300
    )


def _item_team_unknown(result: Mapping[str, Any]) -> bool:
    """The activity's team directory has not seen the team yet: worth sending again."""
    error = result.get("error") or {}
    code = error.get("code") if isinstance(error, Mapping) else error
    return result.get("status") in (404, "not_found") or code in ("team_not_found", "unknown_team")


async def send_support(
    api: Api, events: Sequence[dict[str, Any]], tally: Tally, advance: Callable[[int], None]
) -> None:
    """Send in batches; items whose team activity does not know yet go again until a deadline."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    pending = list(events)
    while pending:
        retry: list[dict[str, Any]] = []
        batches = [pending[i : i + SUPPORT_BATCH] for i in range(0, len(pending), SUPPORT_BATCH)]
        answers = await asyncio.gather(*(_send_batch(api, batch) for batch in batches))
        for batch, results in zip(batches, answers, strict=True):
            for result in results:
                item = batch[int(result["index"])]
                if _item_accepted(result):
                    tally.support_accepted += 1
                    advance(1)
                elif _item_team_unknown(result) and time.monotonic() < deadline:
                    retry.append(item)
                else:
                    tally.support_failed += 1
                    tally.failures.append(f"support {item['event_id']}: {result}")
                    advance(1)
        pending = retry
        if pending:
            await asyncio.sleep(0.5)  # let the team directory catch up before resending


async def _send_batch(api: Api, batch: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    # The key names the batch's content: the same batch replays its first answer, while a
    # resent subset is a new request (activity deduplicates events by event_id anyway).
    digest = hashlib.sha256("\n".join(item["event_id"] for item in batch).encode()).hexdigest()
    response = await api.call(
        "POST",
        "activity",
        "/v1/support-events:batch",
        key=f"{KEY_PREFIX}:support:{digest[:40]}",
        json={"events": list(batch)},
    )
    _expect(response, 200)
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def interleaved(villages: Iterable[VillageWrite]) -> list[VillageWrite]:
    """One village of each commune in turn: the registry numbers villages under a lock on
    their commune, so requests in flight together should name different communes."""
    by_commune: dict[str, list[VillageWrite]] = {}
    for village in villages:
        by_commune.setdefault(village.parent_code, []).append(village)
    rounds = itertools.zip_longest(*by_commune.values())
    return [village for round_ in rounds for village in round_ if village is not None]


async def _each[T, R](
    items: Sequence[T], work: Callable[[T], Awaitable[R]], advance: Callable[[int], None]
) -> list[R]:
    """`work` on every item at once (the Api's semaphore bounds the requests in flight)."""

    async def one(item: T) -> R:
        result = await work(item)
        advance(1)
        return result

    return list(await asyncio.gather(*(one(item) for item in items)))


async def coverage(api: Api, code: str) -> dict[str, Any]:
    response = await api.call(
        "GET", "aggregator", f"/v1/coverage/{code}", params={"edition": EDITION}
    )
    if response.status_code == 404:
        return {}
    _expect(response, 200)
    figures: dict[str, Any] = response.json()
    return figures


async def wait_for_aggregator(
    api: Api, plans: Sequence[ProvincePlan], advance_to: Callable[[int], None]
) -> list[dict[str, Any]]:
    """Poll until every province shows its teams, members and support events."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        figures = await asyncio.gather(*(coverage(api, p.report.province) for p in plans))
        advance_to(
            sum(min(f.get("teams", 0), len(p.teams)) for f, p in zip(figures, plans, strict=True))
        )
        if all(_caught_up(f, p) for f, p in zip(figures, plans, strict=True)):
            return list(figures)
        if time.monotonic() > deadline:
            behind = [
                p.report.name for f, p in zip(figures, plans, strict=True) if not _caught_up(f, p)
            ]
            raise ReplayError(f"the aggregator has not caught up on {', '.join(behind)}")
        await asyncio.sleep(0.25)  # polling interval


def _caught_up(figures: Mapping[str, Any], plan: ProvincePlan) -> bool:
    support = figures.get("support") or {}
    return bool(
        figures.get("teams", 0) >= len(plan.teams)
        and figures.get("members", 0) >= plan.members
        and support.get("events", 0) >= len(plan.support)
    )


async def replay(
    urls: Mapping[str, str],
    *,
    provinces: Sequence[str] = ALL_PROVINCES,
    console: Console | None = None,
    concurrency: int = 16,
) -> list[dict[str, Any]]:
    """Replay the reports of `provinces`; returns the aggregator's figures for each."""
    console = console or Console(highlight=False)
    reports = reports_for(provinces)
    started = time.perf_counter()
    tally = Tally()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = bearer_headers(Settings().api_key)  # CDTT_API_KEY when auth is on
    async with httpx.AsyncClient(timeout=30.0, limits=limits, headers=headers) as client:
        api = Api(client, urls, concurrency)
        trees = await asyncio.gather(*(fetch_tree(api, r.province) for r in reports))
        plans = [plan_province(r, t) for r, t in zip(reports, trees, strict=True)]
        with Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            villages = interleaved(village for plan in plans for village in plan.villages)
            task = progress.add_task("villages registered", total=len(villages))
            await _each(
                villages,
                partial(register_village, api, tally),
                partial(progress.advance, task),
            )
            team_ids: dict[str, str] = {}
            for plan in plans:
                task = progress.add_task(f"{plan.report.name}: teams", total=len(plan.teams))
                ids = await _each(
                    plan.teams, partial(create_team, api, tally), partial(progress.advance, task)
                )
                team_ids.update(zip((t.unit_code for t in plan.teams), ids, strict=True))
            events = [_support_body(w, team_ids[w.unit_code]) for p in plans for w in p.support]
            task = progress.add_task("support events", total=len(events))
            await send_support(api, events, tally, partial(progress.advance, task))
            total_teams = sum(len(p.teams) for p in plans)
            task = progress.add_task("aggregator shows teams", total=total_teams)
            figures = await wait_for_aggregator(
                api, plans, lambda done: progress.update(task, completed=done)
            )
        for failure in tally.failures[:10]:
            console.print(f"[red]{failure}")
        if tally.support_failed:
            raise ReplayError(f"{tally.support_failed} support events were refused")
        console.print(
            f"replayed in {time.perf_counter() - started:.1f} s: "
            f"villages {tally.villages_created} new + {tally.villages_existing} already there, "
            f"teams {tally.teams_created} new + {tally.teams_existing} already there, "
            f"support events {tally.support_accepted} sent"
        )
        console.print(await report_table(api, plans, figures))
    return figures


def _ratio(figures: Mapping[str, Any], level: str) -> str:
    share = (figures.get("coverage") or {}).get(level)
    return f"{share['covered']:,}/{share['total']:,}" if share else "-"


async def report_table(
    api: Api, plans: Sequence[ProvincePlan], figures: Sequence[Mapping[str, Any]]
) -> Table:
    """The 2022 report beside the live figures the aggregator now shows."""
    table = Table(title="2022 report vs live figures (aggregator)")
    for column in ("province", "2022 report", "districts", "communes", "villages", "teams"):
        table.add_column(
            column, justify="left" if column in ("province", "2022 report") else "right"
        )
    table.add_column("members", justify="right")
    table.add_column("support events", justify="right")
    for plan, live in zip(plans, figures, strict=True):
        communes = _ratio(live, "commune")
        for district in plan.report.districts or ():
            scoped = await coverage(api, district)
            communes = f"{_ratio(scoped, 'commune')} of {scoped.get('name', district)}"
        table.add_row(
            plan.report.name,
            plan.report.headline,
            _ratio(live, "district"),
            communes,
            _ratio(live, "village"),
            f"{live.get('teams', 0):,}",
            f"{live.get('members', 0):,}",
            f"{(live.get('support') or {}).get('events', 0):,}",
        )
    return table


@app.command()
def demo(
    registry_url: Annotated[
        str, typer.Option(envvar="CDTT_REGISTRY_URL")
    ] = "http://127.0.0.1:8001",
    activity_url: Annotated[
        str, typer.Option(envvar="CDTT_ACTIVITY_URL")
    ] = "http://127.0.0.1:8002",
    aggregator_url: Annotated[
        str, typer.Option(envvar="CDTT_AGGREGATOR_URL")
    ] = "http://127.0.0.1:8003",
    province: Annotated[
        list[str] | None,
        typer.Option(help="legacy province to replay (repeat; default 15 49 20)"),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="requests in flight")] = 16,
) -> None:
    """Replay the 2022 reports (Yên Bái, Quảng Nam, Lạng Sơn) through the public HTTP API."""
    urls = {"registry": registry_url, "activity": activity_url, "aggregator": aggregator_url}
    try:
        asyncio.run(
            replay(
                urls,
                provinces=tuple(province or ALL_PROVINCES),
                concurrency=concurrency,
            )
        )
    except (ReplayError, PlanError) as error:
        Console(stderr=True).print(f"[red]cdtt demo: {error}")
        raise typer.Exit(1) from None
