"""The figures over HTTP: coverage of a unit, its children, the nation, CSV, and a live stream.

Every answer is read from the projections (primary-key and index reads, never a
recount) and says how fresh it is: `as_of` (when it was read) and `lag_ms` (how far the
figures trailed the streams then; see adapters/lag.py for the exact definition).
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.aggregator.adapters.lag import LagReader
from services.aggregator.adapters.live import LiveFeed, LiveUpdate, SubscriptionClosedError
from services.aggregator.adapters.queries import (
    months_between,
    read_came_from,
    read_children,
    read_national,
    read_series,
    read_unit,
    snapshot,
    unit_known,
)
from services.aggregator.adapters.reporting import read_reporting
from services.aggregator.domain import UnitFigures
from services.aggregator.entrypoints.schemas import (
    REPORTING_CSV_HEADER,
    CameFrom,
    ChildrenCoverage,
    CoverageSeries,
    NationalCoverage,
    Reporting,
    UnitCoverage,
    child_level,
    coverage_series,
    csv_header,
    csv_row,
    in_view,
    reporting_csv_row,
    reporting_row,
    unit_coverage,
)
from shared.contracts.dates import EARLIEST_DATE, today_in_vietnam
from shared.contracts.units import Edition
from shared.runtime.settings import Settings
from shared.web.app import ApiError
from shared.web.auth import LiveKeyDep, LiveOperatorDep, OperatorDep, authenticator
from shared.web.principal import AuthenticationError, Principal


@dataclass(frozen=True)
class AggregatorContext:
    settings: Settings
    engine: AsyncEngine
    lag: LagReader
    feed: LiveFeed
    # Live streams open now, per key id (CDTT_LIVE_STREAMS_PER_KEY caps them).
    live_streams: Counter[str] = field(default_factory=Counter)


def _context(request: Request) -> AggregatorContext:
    context: AggregatorContext = request.app.state.aggregator
    return context


async def _connection(request: Request) -> AsyncIterator[AsyncConnection]:
    async with snapshot(_context(request).engine) as conn:
        yield conn


def _edition(request: Request, edition: Edition | None = None) -> Edition:
    """The edition named in the query, else CDTT_EDITION."""
    return edition or _context(request).settings.edition


@dataclass(frozen=True)
class Freshness:
    as_of: datetime
    lag_ms: int | None

    def headers(self) -> dict[str, str]:
        """`X-As-Of` and `X-Lag-Ms`, for the answers that are not JSON figures."""
        return {
            "X-As-Of": self.as_of.isoformat(),
            "X-Lag-Ms": "" if self.lag_ms is None else str(self.lag_ms),
        }


async def _freshness(request: Request) -> Freshness:
    return Freshness(datetime.now(UTC), await _context(request).lag())


def _as_of_date(
    as_of: Annotated[
        date | None,
        Query(
            description="YYYY-MM-DD: the figures at the end of that day by business dates "
            "(2020-01-01 to today in Vietnam); omitted: live figures"
        ),
    ] = None,
) -> date | None:
    """The day asked for, within the dates the registry takes (the same 422 codes)."""
    if as_of is not None:
        _check_day("as_of", as_of)
    return as_of


def _check_day(what: str, day: date) -> None:
    if day < EARLIEST_DATE:
        raise ApiError(
            422,
            "date_before_earliest",
            f"{what} {day} is before {EARLIEST_DATE}, the earliest date the programme takes",
            field=what,
            value=day.isoformat(),
            earliest=EARLIEST_DATE.isoformat(),
        )
    today = today_in_vietnam()
    if day > today:
        raise ApiError(
            422,
            "date_in_future",
            f"{what} {day} is in the future (today in Vietnam is {today})",
            field=what,
            value=day.isoformat(),
            today=today.isoformat(),
        )


Context = Annotated[AggregatorContext, Depends(_context)]
Connection = Annotated[AsyncConnection, Depends(_connection)]
EditionParam = Annotated[Edition, Depends(_edition)]
Fresh = Annotated[Freshness, Depends(_freshness)]
AsOf = Annotated[date | None, Depends(_as_of_date)]

router = APIRouter(prefix="/v1", tags=["coverage"])

# Codes as the units carry them: never a byte the database could refuse (NUL, ...).
CODE_PATTERN = r"^[0-9A-Za-z-]+$"
PathCode = Annotated[str, Path(min_length=1, max_length=20, pattern=CODE_PATTERN)]
UNKNOWN_UNIT: dict[int | str, dict[str, Any]] = {404: {"description": "no such unit"}}


def _unknown_unit(edition: Edition, code: str) -> ApiError:
    return ApiError(
        404, "unit_not_found", f"no unit {code!r} in edition {edition}", edition=edition, unit=code
    )


async def readable_unit(
    conn: AsyncConnection,
    principal: Principal,
    edition: Edition,
    code: str,
    as_of: date | None = None,
) -> UnitFigures:
    """The unit's figures (at the end of `as_of` when given); 404 for an unknown unit, and
    for a unit of another province than the key's (as if it did not exist)."""
    unit = await read_unit(conn, edition, code, as_of)
    if unit is None:
        raise _unknown_unit(edition, code)
    principal.require_read(edition, unit.path, unknown=_unknown_unit(edition, code))
    return unit


async def _require_unit_in_scope(
    conn: AsyncConnection, principal: Principal, edition: Edition, code: str
) -> None:
    """404 for an unknown unit, and for a unit of another province than the key's (as if
    it did not exist: probing codes tells nothing)."""
    if principal.province_code is None:
        if not await unit_known(conn, edition, code):
            raise _unknown_unit(edition, code)
        return
    await readable_unit(conn, principal, edition, code)


@router.get("/coverage")
async def national_coverage(
    conn: Connection, edition: EditionParam, fresh: Fresh, principal: OperatorDep, as_of: AsOf
) -> NationalCoverage:
    """National figures of an edition, with one row per province."""
    principal.require_everywhere(edition, "the national figures")
    national = await read_national(conn, edition, as_of)
    provinces = await read_children(conn, edition, None, as_of)
    body = unit_coverage(national, fresh.as_of, fresh.lag_ms, as_of)
    items = [unit_coverage(p, fresh.as_of, fresh.lag_ms, as_of) for p in provinces]
    return NationalCoverage(**body.model_dump(), items=items)


@router.get("/coverage.csv", response_class=Response, responses=UNKNOWN_UNIT)
async def coverage_csv(
    conn: Connection,
    edition: EditionParam,
    fresh: Fresh,
    principal: OperatorDep,
    as_of: AsOf,
    parent: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=20,
            pattern=CODE_PATTERN,
            description="unit code; omitted: the provinces",
        ),
    ] = None,
) -> Response:
    """The children table of a unit (or the provinces) as CSV, UTF-8."""
    if parent is None:
        principal.require_everywhere(edition, "the provinces' table")
        rows_level = child_level(edition, None)
    else:
        unit = await readable_unit(conn, principal, edition, parent)
        rows_level = child_level(edition, unit.level)
    children = await read_children(conn, edition, parent, as_of)
    header = csv_header(edition, rows_level)
    dated = f"-{as_of.isoformat()}" if as_of else ""
    headers = fresh.headers()
    if as_of is not None:
        headers["X-As-Of-Date"] = as_of.isoformat()
    return _csv_response(
        f"cdtt-{edition}-{parent or 'national'}{dated}.csv",
        [header, *(csv_row(child, header) for child in children)],
        headers,
    )


def _csv_response(
    name: str, rows: Iterable[Sequence[object]], headers: dict[str, str] | None = None
) -> Response:
    """A CSV download (UTF-8); cells are already neutralised (shared.web.spreadsheet)."""
    out = io.StringIO()
    # RFC 4180 line ends: a field holding a carriage return or a newline is then quoted.
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', **(headers or {})},
    )


@router.get(
    "/reporting",
    response_model=Reporting,
    responses={
        **UNKNOWN_UNIT,
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"},
    },
)
async def reporting(
    conn: Connection,
    edition: EditionParam,
    principal: OperatorDep,
    period: Annotated[
        str, Query(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$", description='the month, "YYYY-MM"')
    ],
    parent: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=20,
            pattern=CODE_PATTERN,
            description="unit code; omitted: the provinces",
        ),
    ] = None,
    format: Annotated[
        Literal["json", "csv"], Query(description="csv: the same rows as a CSV download")
    ] = "json",
) -> Reporting | Response:
    """Per unit under `parent`: active teams, those that recorded support in `period`, the
    reporting rate, and (communes, villages) the silent teams."""
    if parent is None:
        principal.require_everywhere(edition, "the provinces' reporting")
        path: tuple[str, ...] = ()
    else:
        unit = await readable_unit(conn, principal, edition, parent)
        path = unit.path
    rows = await read_reporting(conn, edition, path, period, with_silent=True)
    report = Reporting(
        edition=edition,
        parent=parent,
        period=period,
        items=[reporting_row(row) for row in rows],
    )
    if format == "json":
        return report
    return _csv_response(
        f"cdtt-{edition}-{parent or 'national'}-reporting-{period}.csv",
        [REPORTING_CSV_HEADER, *(reporting_csv_row(report, row) for row in report.items)],
    )


# At most ten years of months in one series.
MAX_SERIES_MONTHS = 120
MONTH_PATTERN = r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])$"  # year 0 is no date: 422, not 500


def _series_months(first: str, last: str) -> list[str]:
    """The months asked for, and the one before them (each row's change is against it)."""
    if first > last:
        raise ApiError(422, "invalid_period", f"from {first} is after to {last}", first=first)
    months = months_between(first, last)
    if len(months) > MAX_SERIES_MONTHS:
        raise ApiError(
            422,
            "too_many_months",
            f"{len(months)} months from {first} to {last}: at most {MAX_SERIES_MONTHS}",
            months=len(months),
            limit=MAX_SERIES_MONTHS,
        )
    _check_day("from", date(int(first[:4]), int(first[5:]), 1))
    _check_day("to", date(int(last[:4]), int(last[5:]), 1))
    year, month = int(first[:4]), int(first[5:])
    before = f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"
    return [before, *months]


@router.get("/coverage/series")
async def national_series(
    conn: Connection,
    edition: EditionParam,
    principal: OperatorDep,
    first: Annotated[str, Query(alias="from", pattern=MONTH_PATTERN, description='"YYYY-MM"')],
    last: Annotated[str, Query(alias="to", pattern=MONTH_PATTERN, description='"YYYY-MM"')],
) -> CoverageSeries:
    """The nation's figures month by month: end-of-month teams, members and coverage, the
    month's support, and each one's change against the month before (at most 120 months)."""
    principal.require_everywhere(edition, "the national figures")
    months = _series_months(first, last)
    national = await read_national(conn, edition)
    return coverage_series(national, await read_series(conn, national, months))


@router.get("/coverage/{code}", responses=UNKNOWN_UNIT)
async def unit_figures(
    code: PathCode,
    conn: Connection,
    edition: EditionParam,
    fresh: Fresh,
    principal: OperatorDep,
    as_of: AsOf,
) -> UnitCoverage:
    """A unit's figures: its own team, and its subtree's teams, coverage and support."""
    unit = await readable_unit(conn, principal, edition, code, as_of)
    body = unit_coverage(unit, fresh.as_of, fresh.lag_ms, as_of)
    if edition == "2025":
        body.came_from = [
            CameFrom(code=p.code, name=p.name, level=p.level, partly=p.partly)
            for p in await read_came_from(conn, edition, code)
        ]
    return body


@router.get("/coverage/{code}/series", responses=UNKNOWN_UNIT)
async def unit_series(
    code: PathCode,
    conn: Connection,
    edition: EditionParam,
    principal: OperatorDep,
    first: Annotated[str, Query(alias="from", pattern=MONTH_PATTERN, description='"YYYY-MM"')],
    last: Annotated[str, Query(alias="to", pattern=MONTH_PATTERN, description='"YYYY-MM"')],
) -> CoverageSeries:
    """A unit's figures month by month (see /v1/coverage/series)."""
    months = _series_months(first, last)
    unit = await readable_unit(conn, principal, edition, code)
    return coverage_series(unit, await read_series(conn, unit, months))


@router.get("/coverage/{code}/children", responses=UNKNOWN_UNIT)
async def children_figures(
    code: PathCode,
    conn: Connection,
    edition: EditionParam,
    fresh: Fresh,
    principal: OperatorDep,
    as_of: AsOf,
) -> ChildrenCoverage:
    """The figures of each unit directly under `code`, by code."""
    await _require_unit_in_scope(conn, principal, edition, code)
    children = await read_children(conn, edition, code, as_of)
    return ChildrenCoverage(
        edition=edition,
        parent=code,
        items=[unit_coverage(c, fresh.as_of, fresh.lag_ms, as_of) for c in children],
        as_of=fresh.as_of,
        lag_ms=fresh.lag_ms,
        as_of_date=as_of,
    )


def live_event(update: LiveUpdate) -> str:
    """One Server-Sent Event: `coverage`, its id, and the changed units' figures as JSON."""
    data = {
        "edition": update.edition,
        "codes": [f.key.code for f in update.figures],
        "units": [
            unit_coverage(f, update.as_of, update.lag_ms).model_dump(mode="json")
            for f in update.figures
        ],
        "as_of": update.as_of.isoformat(),
        "lag_ms": update.lag_ms,
    }
    return f"id: {update.sequence}\nevent: coverage\ndata: {orjson.dumps(data).decode()}\n\n"


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def live(
    request: Request,
    context: Context,
    edition: EditionParam,
    principal: LiveOperatorDep,
    presented: LiveKeyDep,
    parent: Annotated[
        str | None,
        Query(
            description="only this unit and the units directly under it (a dashboard view); "
            "empty: the nation and the provinces; omitted: every changed unit"
        ),
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events: after each applied batch, the changed units with their new figures.

    A key bound to a province sees only the units of that province. The key is checked
    again every CDTT_LIVE_HEARTBEAT_SECONDS (a revoked key's stream ends), a stream ends
    after CDTT_LIVE_MAX_SECONDS (EventSource reconnects by itself), and one key holds at
    most CDTT_LIVE_STREAMS_PER_KEY streams at once.
    """
    settings = context.settings
    holder = None if principal.anonymous else principal.key_id
    if holder is not None and context.live_streams[holder] >= settings.live_streams_per_key:
        raise ApiError(
            429,
            "too_many_streams",
            f"key {holder} already holds {settings.live_streams_per_key} live streams "
            "(CDTT_LIVE_STREAMS_PER_KEY); close one first",
            key_id=holder,
            limit=settings.live_streams_per_key,
        )
    keys = authenticator(request)
    if holder is not None:
        # Counted from here, before the response starts, so parallel opens cannot overshoot.
        context.live_streams[holder] += 1

    async def still_valid() -> bool:
        try:
            await keys.authenticate(presented)
        except AuthenticationError:
            return False
        return True

    async def events() -> AsyncIterator[str]:
        started = time.monotonic()
        ends_at = started + settings.live_max_seconds
        check_at = started + settings.live_heartbeat_seconds
        try:
            async with context.feed.subscribe(edition) as subscription:
                yield "retry: 2000\n: connected\n\n"
                while (now := time.monotonic()) < ends_at:
                    if now >= check_at:
                        if not await still_valid():
                            return
                        check_at = now + settings.live_heartbeat_seconds
                    try:
                        update = await subscription.next(max(0.0, min(check_at, ends_at) - now))
                    except SubscriptionClosedError:
                        return
                    if update is None:
                        yield ": keep-alive\n\n"
                        continue
                    shown = tuple(
                        f
                        for f in update.figures
                        if in_view(f, parent) and principal.covers(edition, f.path)
                    )
                    if shown:
                        yield live_event(replace(update, figures=shown))
        finally:
            if holder is not None:
                context.live_streams[holder] -= 1

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
