"""shared.messaging.outages: which failures mean a server is away, which are the entry's."""

from __future__ import annotations

import asyncpg
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as SqlTimeoutError

from shared.messaging.outages import dependency_unavailable


class AdaptedError(Exception):
    """What SQLAlchemy's asyncpg adapter raises: the driver's error with its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def wrapped(sqlstate: str) -> DBAPIError:
    return DBAPIError("SELECT 1", None, AdaptedError(sqlstate))


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        RedisConnectionError("Connection closed by server."),
        SqlTimeoutError("QueuePool limit reached"),
        wrapped("57P03"),  # the database system is starting up
        wrapped("57P01"),  # terminating connection due to administrator command
        wrapped("08006"),  # connection failure
        wrapped("40P01"),  # deadlock detected
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    ],
    ids=repr,
)
def test_an_unavailable_dependency_is_recognised(error: BaseException) -> None:
    assert dependency_unavailable(error)


def test_a_cause_deep_in_the_chain_is_found() -> None:
    outer = RuntimeError("batch failed")
    outer.__cause__ = wrapped("XX000")
    outer.__cause__.__context__ = ConnectionResetError("reset by peer")
    assert dependency_unavailable(outer)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad payload"),
        KeyError("unit"),
        IntegrityError("INSERT", None, AdaptedError("23505")),  # unique violation
        wrapped("22003"),  # numeric value out of range: the entry's fault
    ],
    ids=repr,
)
def test_the_entrys_own_faults_are_not_outages(error: BaseException) -> None:
    assert not dependency_unavailable(error)
