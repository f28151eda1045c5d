"""Failures that mean PostgreSQL or Redis is away or busy, not that the work was wrong.

The consumers use this to tell an entry that cannot be applied (retried, then
dead-lettered) from an entry that could not be applied yet because a server did not
answer (retried without counting the attempt).
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SqlTimeoutError

# SQLSTATE classes of failures that say nothing about the entry: connection exceptions
# (08), insufficient resources (53), operator intervention such as a shutdown or a
# server still starting (57P), transaction rollbacks such as deadlocks (40).
_TRANSIENT_SQLSTATES = ("08", "53", "57P", "40")


def dependency_unavailable(error: BaseException) -> bool:
    """True when `error` (or what caused it) is PostgreSQL or Redis being away or busy."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        cause = pending.pop()
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, OSError | TimeoutError | RedisConnectionError | RedisTimeoutError):
            return True
        if isinstance(cause, SqlTimeoutError):  # no pooled connection came free in time
            return True
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return True
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_TRANSIENT_SQLSTATES):
            return True
        orig = cause.orig if isinstance(cause, DBAPIError) else None
        pending += [cause.__cause__, cause.__context__, orig]
    return False
