"""The public HTTP API as a provincial system calls it: retries, Idempotency-Keys, answers read.

What `cdtt demo` sends: villages, teams and support-event batches, each with a key derived
from the replay plan; 429, 502–504 and lost connections are retried, after the Retry-After
the service sent when it sent one (the key makes retries safe).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any

import httpx
import typer
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from tenacity.wait import wait_base

from cdtt.demo.report2022 import (
    PlanError,
    ProvinceTree,
    SupportWrite,
    TeamWrite,
    Unit,
    VillageWrite,
)

# The services' base URLs as the commands that write to them take them (defaults: cdtt.stack).
RegistryUrl = Annotated[str, typer.Option(envvar="CDTT_REGISTRY_URL")]
ActivityUrl = Annotated[str, typer.Option(envvar="CDTT_ACTIVITY_URL")]
AggregatorUrl = Annotated[str, typer.Option(envvar="CDTT_AGGREGATOR_URL")]

EDITION = "legacy"
KEY_PREFIX = "demo2022"
SUPPORT_BATCH = 500
ATTEMPTS = 8  # per request, on 429/502/503/504 and lost connections (retry-safe by key)
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 30.0  # a server asking for longer is waited for this long at most
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


class RetryableStatusError(Exception):
    """An answer that asks to be retried (429 or a 5xx gateway/unavailable)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The answer's Retry-After (seconds or an HTTP date), within [0, 30 s]; None if absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class wait_retry_after(wait_base):  # noqa: N801 - named like tenacity's own waits
    """Wait what the server's Retry-After says; without one, `fallback`'s backoff."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RetryableStatusError):
            asked = retry_after_seconds(error.response)
            if asked is not None:
                return asked
        return float(self.fallback(retry_state))


class Api:
    """The three services' public HTTP APIs, retried (tenacity) on 429, 502–504 and lost
    connections: after the Retry-After the service sent, else 0.1 s doubling to 3 s."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        urls: Mapping[str, str],
        limit: int,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.urls = urls
        self.slots = asyncio.Semaphore(limit)
        self.sleep = sleep

    async def call(
        self, method: str, service: str, path: str, *, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        url = self.urls[service].rstrip("/") + path
        retrying = AsyncRetrying(
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_retry_after(wait_exponential(multiplier=0.1, max=3.0)),
            retry=retry_if_exception_type((httpx.TransportError, RetryableStatusError)),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with self.slots:  # not held while waiting to retry
                        response = await self.client.request(method, url, headers=headers, **kwargs)
                    if response.status_code in RETRIED_STATUSES:
                        raise RetryableStatusError(response)
                    return response
        except RetryableStatusError as exhausted:
            return exhausted.response  # the caller reports what the service answered last
        except httpx.TransportError as error:
            raise ReplayError(f"{method} {url}: {error!r}") from error
        raise AssertionError("tenacity neither returned nor raised")  # pragma: no cover

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
            "members": [
                {"full_name": name, "role": role}
                | ({} if trained is None else {"trained_on": trained.isoformat()})
                for (name, role), trained in zip(
                    team.members, team.trained_on or [None] * len(team.members), strict=True
                )
            ],
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


def support_body(write: SupportWrite, team_id: str) -> dict[str, Any]:
    return {
        "event_id": str(write.event_id),
        "team_id": team_id,
        "occurred_on": write.occurred_on.isoformat(),
        "category": write.category,
        "residents_helped": write.residents_helped,
        **({"outcomes": dict(write.outcomes)} if write.outcomes else {}),
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


async def set_target(api: Api, province: str, body: Mapping[str, Any]) -> bool:
    """The province's target (PUT replaces it: a second run changes nothing); False when the
    key may not set targets (a publisher key: targets are for operators and admins)."""
    response = await api.call(
        "PUT", "registry", f"/v1/targets/{province}", params={"edition": EDITION}, json=body
    )
    if response.status_code == 403:
        return False
    _expect(response, 200)
    return True


async def coverage(api: Api, code: str, as_of: date | None = None) -> dict[str, Any]:
    """The unit's figures now, or at the end of `as_of` (the aggregator's history)."""
    dated = {} if as_of is None else {"as_of": as_of.isoformat()}
    response = await api.call(
        "GET", "aggregator", f"/v1/coverage/{code}", params={"edition": EDITION} | dated
    )
    if response.status_code == 404:
        return {}
    _expect(response, 200)
    figures: dict[str, Any] = response.json()
    return figures


async def series(api: Api, code: str, first: date, last: date) -> list[dict[str, Any]]:
    """The unit's month rows from `first`'s month to `last`'s (end-of-month figures, change)."""
    response = await api.call(
        "GET",
        "aggregator",
        f"/v1/coverage/{code}/series",
        params={"edition": EDITION, "from": f"{first:%Y-%m}", "to": f"{last:%Y-%m}"},
    )
    _expect(response, 200)
    months: list[dict[str, Any]] = response.json()["months"]
    return months
