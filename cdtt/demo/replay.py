"""`cdtt demo`: the 2022 reports replayed through the public HTTP API, as provincial systems would.

Villages are registered under their communes, teams created at district, commune and village
level, then support events sent in batches; the replay ends when the aggregator shows it.
Every write carries an Idempotency-Key derived from the plan, so a second run changes nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cdtt.demo.provincial import (
    CATCH_UP_SECONDS,
    ActivityUrl,
    AggregatorUrl,
    Api,
    RegistryUrl,
    ReplayError,
    Tally,
    coverage,
    create_team,
    fetch_tree,
    register_village,
    send_support,
    series,
    set_target,
    support_body,
)
from cdtt.demo.report2022 import (
    ALL_PROVINCES,
    PlanError,
    ProvincePlan,
    VillageWrite,
    plan_province,
    reports_for,
)
from cdtt.stack import DEFAULT_URLS
from shared.runtime.settings import Settings
from shared.web.keys import bearer_headers

app = typer.Typer()


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
            events = [support_body(w, team_ids[w.unit_code]) for p in plans for w in p.support]
            task = progress.add_task("support events", total=len(events))
            await send_support(api, events, tally, partial(progress.advance, task))
            targets_set = [await set_target(api, p.report.province, p.target()) for p in plans]
            total_teams = sum(len(p.teams) for p in plans)
            task = progress.add_task("aggregator shows teams", total=total_teams)
            figures = await wait_for_aggregator(
                api, plans, lambda done: progress.update(task, completed=done)
            )
        for failure in tally.failures[:10]:
            console.print(f"[red]{failure}")
        if not all(targets_set):
            console.print(
                "[yellow]targets not set: this key may not (targets need an operator or admin "
                "key; CDTT_API_KEY is a publisher's)"
            )
        if tally.support_failed:
            raise ReplayError(f"{tally.support_failed} support events were refused")
        console.print(
            f"replayed in {time.perf_counter() - started:.1f} s: "
            f"villages {tally.villages_created} new + {tally.villages_existing} already there, "
            f"teams {tally.teams_created} new + {tally.teams_existing} already there, "
            f"support events {tally.support_accepted} sent"
        )
        console.print(await report_table(api, plans))
        for plan in plans:
            console.print(await growth_table(api, plan))
        console.print(await table_2025(api, plans))
    return figures


def _ratio(figures: Mapping[str, Any], level: str) -> str:
    share = (figures.get("coverage") or {}).get(level)
    return f"{share['covered']:,}/{share['total']:,}" if share else "-"


async def report_table(api: Api, plans: Sequence[ProvincePlan]) -> Table:
    """Each 2022 report beside the aggregator's figures as of the day it gives them."""
    table = Table(title="2022 report vs the aggregator as of the report's day")
    for column in ("province", "2022 report", "as of", "districts", "communes", "villages"):
        table.add_column(
            column, justify="left" if column in ("province", "2022 report") else "right"
        )
    for column in ("teams", "members", "support events"):
        table.add_column(column, justify="right")
    for plan in plans:
        day = plan.report.reported_on
        then = await coverage(api, plan.report.province, day)
        communes = _ratio(then, "commune")
        for district in plan.report.districts or ():
            scoped = await coverage(api, district, day)
            communes = f"{_ratio(scoped, 'commune')} of {scoped.get('name', district)}"
        table.add_row(
            plan.report.name,
            plan.report.headline,
            day.isoformat(),
            _ratio(then, "district"),
            communes,
            _ratio(then, "village"),
            f"{then.get('teams', 0):,}",
            f"{then.get('members', 0):,}",
            f"{(then.get('support') or {}).get('events', 0):,}",
        )
    return table


def _covered(month: Mapping[str, Any], level: str) -> int:
    share = (month.get("coverage") or {}).get(level) or {}
    return int(share.get("covered", 0))


async def growth_table(api: Api, plan: ProvincePlan) -> Table:
    """The province's teams and covered villages at each month's end up to the report's day."""
    report = plan.report
    table = Table(title=f"{report.name}: growth by month (aggregator series)")
    for column in ("month", "teams", "change", "covered villages", "change"):
        table.add_column(column, justify="left" if column == "month" else "right")
    for month in await series(api, report.province, report.teams_from, report.reported_on):
        change = month.get("change") or {}
        table.add_row(
            month["month"],
            f"{month.get('teams', 0):,}",
            f"{change.get('teams', 0):+,}",
            f"{_covered(month, 'village'):,}",
            f"{(change.get('coverage') or {}).get('village', 0):+,}",
        )
    return table


async def _get(api: Api, service: str, path: str, **params: str) -> dict[str, Any]:
    response = await api.call("GET", service, path, params=params)
    if response.status_code != 200:
        return {}
    body: dict[str, Any] = response.json()
    return body


async def table_2025(api: Api, plans: Sequence[ProvincePlan]) -> Table:
    """The same teams on the 2025 map: each 2025 province the replayed provinces went into."""
    table = Table(title="the same teams on the 2025 map (aggregator, edition 2025)")
    for column in ("2025 province", "came from", "communes", "villages", "teams", "members"):
        table.add_column(
            column, justify="left" if column in ("2025 province", "came from") else "right"
        )
    table.add_column("unplaced teams", justify="right")
    into: dict[str, list[str]] = {}
    for plan in plans:
        found = await _get(
            api, "registry", f"/v1/units/{plan.report.province}/successors", edition="legacy"
        )
        for unit in found.get("items", ()):
            into.setdefault(unit["code"], []).append(plan.report.name)
    for code, names in sorted(into.items()):
        live = await _get(api, "aggregator", f"/v1/coverage/{code}", edition="2025")
        if not live:
            continue
        table.add_row(
            live.get("name", code),
            ", ".join(names),
            _ratio(live, "commune"),
            _ratio(live, "village"),
            f"{live.get('teams', 0):,}",
            f"{live.get('members', 0):,}",
            f"{(live.get('unplaced') or {}).get('teams', 0):,}",
        )
    if not into:
        table.caption = "load the 2025 units (cdtt units load --edition 2025) to see this table"
    return table


@app.command()
def demo(
    registry_url: RegistryUrl = DEFAULT_URLS["registry"],
    activity_url: ActivityUrl = DEFAULT_URLS["activity"],
    aggregator_url: AggregatorUrl = DEFAULT_URLS["aggregator"],
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
