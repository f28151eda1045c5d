"""Item 5's fast path: the national data set written straight into the services' own tables.

Registry: the official 2025 units, villages under the communes, teams and members.
Activity: the team directory and support events. Aggregator: units, team states and
every figure computed by SQL from the producers' tables, by the same definitions the
projections follow (what `cdtt check` recounts). Events loaded this way never passed
through a stream, so they are not in the aggregator's processed-event inbox (nothing
would redeliver them). The last part of the support events is instead written with its
outbox rows, so activity's relay and the aggregator's consumer carry it as in production.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from services.activity.adapters import tables as activity
from services.aggregator.adapters import tables as aggregator
from services.aggregator.domain import COUNTERS
from services.registry.adapters import tables as registry
from services.registry.adapters.official_units import official_units
from shared.contracts.events.activity import CATEGORIES
from shared.contracts.streams import ACTIVITY_EVENTS
from shared.messaging.outbox import notify_channel

# This fast path writes the services' tables itself, standing in for them; it names each
# table through its owner's definition, so that the dependency shows in the imports.
REGISTRY_UNITS, TEAMS, MEMBERS = (
    t.fullname for t in (registry.units, registry.teams, registry.members)
)
TEAM_DIRECTORY, SUPPORT_EVENTS, OUTBOX = (
    t.fullname for t in (activity.team_directory, activity.support_events, activity.outbox)
)
AGGREGATOR_UNITS, TEAM_STATES, FIGURES = (
    t.fullname for t in (aggregator.units, aggregator.team_states, aggregator.figures)
)


@dataclass(frozen=True)
class Scale:
    villages: int
    teams: int  # on communes first (up to one each), the rest on villages
    members_per_team: int
    support_events: int  # in all, the last `through_consumers` of them through the streams
    through_consumers: int

    def describe(self) -> str:
        return (
            f"34 provinces / 3,321 communes / {self.villages:,} villages / {self.teams:,} teams"
            f" / {self.teams * self.members_per_team:,} members / {self.support_events:,} "
            f"support events (the last {self.through_consumers:,} through relay and consumers)"
        )


_CATEGORY_ARRAY = "ARRAY[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
# Event n of the data set: its team, day, category and residents, from n alone.
_EVENTS = f"""
SELECT gen_random_uuid() AS event_id, t.team_id, t.edition, t.unit_code, t.unit_path,
       date '2025-07-01' + (g % 500)::int AS occurred_on,
       ({_CATEGORY_ARRAY})[1 + (g % 7)::int] AS category,
       (1 + (g * 31) % 50)::int AS residents_helped
FROM generate_series($1::bigint, $2::bigint) AS g
JOIN bench_teams t ON t.n = (g * 7919) % $3
"""

_EVENT_COLUMNS = (
    "event_id, team_id, edition, unit_code, unit_path, occurred_on, category, residents_helped"
)


async def load_registry(conn: asyncpg.Connection, scale: Scale) -> None:
    units = [u for province in official_units("2025") for u in province.units]
    await conn.copy_records_to_table(
        registry.units.name,
        schema_name=registry.units.schema,
        columns=["edition", "code", "name", "level", "kind", "parent_code", "path"],
        records=[
            (u.edition, u.code, u.name, u.level, u.kind, u.parent_code, list(u.path)) for u in units
        ],
    )
    communes = sum(u.level == "commune" for u in units)
    await conn.execute(
        f"""
        INSERT INTO {REGISTRY_UNITS} (edition, code, name, level, kind, parent_code, path)
        SELECT '2025', v.code, 'Thôn ' || v.n, 'village', 'thôn', c.code, c.path || v.code
        FROM (SELECT code, path, row_number() OVER (ORDER BY code) - 1 AS i
              FROM {REGISTRY_UNITS} WHERE edition = '2025' AND level = 'commune') AS c
        CROSS JOIN LATERAL (
            SELECT n, c.code || '-' || lpad(n::text, 3, '0') AS code
            FROM generate_series(1, $1::int / $2::int + (c.i < $1::int % $2::int)::int) AS n
        ) AS v
        """,
        scale.villages,
        communes,
    )
    on_communes = min(scale.teams, communes)
    await conn.execute(
        f"""
        INSERT INTO {TEAMS} (team_id, edition, unit_code, name, status, version)
        SELECT gen_random_uuid(), '2025', code, 'Tổ công nghệ số ' || code, 'active', 1
        FROM (
            (SELECT code FROM {REGISTRY_UNITS} WHERE edition = '2025' AND level = 'commune'
             ORDER BY md5(code) LIMIT $1)
            UNION ALL
            (SELECT code FROM {REGISTRY_UNITS} WHERE edition = '2025' AND level = 'village'
             ORDER BY md5(code) LIMIT $2)
        ) AS covered
        """,
        on_communes,
        scale.teams - on_communes,
    )
    await conn.execute(
        f"""
        INSERT INTO {MEMBERS} (member_id, team_id, full_name, role)
        SELECT gen_random_uuid(), t.team_id, 'Thành viên ' || m,
               CASE WHEN m = 1 THEN 'leader' ELSE 'member' END
        FROM {TEAMS} t CROSS JOIN generate_series(1, $1::int) AS m
        """,
        scale.members_per_team,
    )


async def load_activity(
    conn: asyncpg.Connection, scale: Scale, progress: Callable[[int], None]
) -> None:
    """The directory, then every support event but the last `through_consumers`."""
    await conn.execute(
        f"""
        INSERT INTO {TEAM_DIRECTORY}
            (team_id, edition, unit_code, unit_level, unit_path, status, version)
        SELECT t.team_id, t.edition, t.unit_code, u.level, u.path, t.status, t.version
        FROM {TEAMS} t JOIN {REGISTRY_UNITS} u
          ON u.edition = t.edition AND u.code = t.unit_code
        """
    )
    await conn.execute(
        f"""
        CREATE TABLE bench_teams AS
        SELECT row_number() OVER (ORDER BY team_id) - 1 AS n, team_id, edition, unit_code,
               unit_path
        FROM {TEAM_DIRECTORY};
        CREATE UNIQUE INDEX ON bench_teams (n);
        ANALYZE bench_teams;
        """
    )
    fast = scale.support_events - scale.through_consumers
    chunk = 500_000
    for start in range(0, fast, chunk):
        end = min(fast, start + chunk) - 1
        await conn.execute(
            f"INSERT INTO {SUPPORT_EVENTS} ({_EVENT_COLUMNS}) {_EVENTS}",
            start,
            end,
            scale.teams,
        )
        progress(end + 1)


async def load_aggregator(conn: asyncpg.Connection) -> None:
    """Units, team states and figures, computed from the producers' tables."""
    await conn.execute(
        f"""
        INSERT INTO {AGGREGATOR_UNITS} (edition, code, name, level, parent_code, path)
        SELECT edition, code, name, level, parent_code, path FROM {REGISTRY_UNITS};
        INSERT INTO {TEAM_STATES}
            (team_id, edition, version, status, unit_path, unit_level, member_count)
        SELECT t.team_id, t.edition, t.version, t.status, u.path, u.level,
               (SELECT count(*) FROM {MEMBERS} m WHERE m.team_id = t.team_id)
        FROM {TEAMS} t JOIN {REGISTRY_UNITS} u
          ON u.edition = t.edition AND u.code = t.unit_code;
        """
    )
    # Support summed per unit path and category in one scan; months in a second.
    await conn.execute(
        f"""
        CREATE TABLE bench_support_cat AS
        SELECT edition, unit_path, category, count(*) AS events, sum(residents_helped) AS residents
        FROM {SUPPORT_EVENTS} GROUP BY edition, unit_path, category;
        CREATE TABLE bench_support_month AS
        SELECT edition, unit_path, to_char(occurred_on, 'YYYY-MM') AS month, count(*) AS events,
               sum(residents_helped) AS residents
        FROM {SUPPORT_EVENTS} GROUP BY edition, unit_path, month;
        """
    )
    zero = dict.fromkeys(COUNTERS, "0")

    def row(**values: str) -> str:
        return ", ".join({**zero, **values}[name] for name in COUNTERS)

    levels = ("province", "commune", "village")
    totals = {f"total_{lv}": f"(u.level = '{lv}')::int" for lv in levels}
    covered = {f"covered_{lv}": f"(u.level = '{lv}')::int" for lv in levels}
    ancestors = "unnest(ARRAY[''] || u.path[1:array_length(u.path, 1) - 1])"
    scope = "unnest(ARRAY[''] || {}) AS k(code)"
    await conn.execute(
        f"""
        INSERT INTO {FIGURES} (edition, code, {", ".join(COUNTERS)})
        SELECT edition, code, {", ".join(f"sum({c})" for c in COUNTERS)}
        FROM (
            SELECT u.edition, u.code, {row()} FROM {REGISTRY_UNITS} u
            UNION ALL
            SELECT u.edition, k.code, {row(**totals)}
            FROM {REGISTRY_UNITS} u, {ancestors} AS k(code)
            UNION ALL
            SELECT u.edition, k.code, {row(**covered)}
            FROM {REGISTRY_UNITS} u, {ancestors} AS k(code)
            WHERE EXISTS (SELECT 1 FROM {TEAMS} t WHERE t.edition = u.edition
                          AND t.unit_code = u.code AND t.status = 'active')
            UNION ALL
            SELECT t.edition, k.code, {
            row(teams="1", members="t.member_count", direct_teams="(k.code = u.code)::int")
        }
            FROM (SELECT t.edition, t.unit_code,
                         (SELECT count(*) FROM {MEMBERS} m WHERE m.team_id = t.team_id)
                           AS member_count
                  FROM {TEAMS} t WHERE t.status = 'active') AS t
            JOIN {REGISTRY_UNITS} u ON u.edition = t.edition AND u.code = t.unit_code,
            {scope.format("u.path")}
            UNION ALL
            SELECT s.edition, k.code, {
            row(support_events="s.events", support_residents="s.residents")
        }
            FROM bench_support_cat s, {scope.format("s.unit_path")}
        ) AS contributions (edition, code, {", ".join(COUNTERS)})
        GROUP BY edition, code
        """
    )
    for table, bucket, source in (
        (aggregator.support_by_category.fullname, "category", "bench_support_cat"),
        (aggregator.support_by_month.fullname, "month", "bench_support_month"),
    ):
        await conn.execute(
            f"""
            INSERT INTO {table} (edition, code, {bucket}, events, residents)
            SELECT s.edition, k.code, s.{bucket}, sum(s.events), sum(s.residents)
            FROM {source} s, {scope.format("s.unit_path")}
            GROUP BY s.edition, k.code, s.{bucket}
            """
        )
    await conn.execute("DROP TABLE bench_support_cat, bench_support_month")
    await conn.execute("ANALYZE")


async def publish_rest(conn: asyncpg.Connection, scale: Scale, chunk: int = 50_000) -> None:
    """The last events as activity records them: row and outbox row, one commit per chunk."""
    first = scale.support_events - scale.through_consumers
    for start in range(first, scale.support_events, chunk):
        end = min(scale.support_events, start + chunk) - 1
        async with conn.transaction():
            await conn.execute(
                f"""
                WITH new AS (
                    INSERT INTO {SUPPORT_EVENTS} ({_EVENT_COLUMNS}) {_EVENTS}
                    RETURNING *
                )
                INSERT INTO {OUTBOX} (stream, event_id, event_type, envelope)
                SELECT $4, event_id, 'support.recorded', json_build_object(
                    'event_id', event_id, 'type', 'support.recorded', 'schema_version', 1,
                    'occurred_at', now(), 'producer', 'activity', 'edition', edition,
                    'unit_path', unit_path, 'actor', NULL,
                    'payload', json_build_object(
                        'team_id', team_id, 'unit_code', unit_code, 'occurred_on', occurred_on,
                        'category', category, 'residents_helped', residents_helped))::text
                FROM new ORDER BY event_id
                """,
                start,
                end,
                scale.teams,
                ACTIVITY_EVENTS,
            )
            await conn.execute(f"NOTIFY {notify_channel(activity.outbox)}")
