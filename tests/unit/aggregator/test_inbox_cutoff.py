"""inbox_cutoff: which processed event ids can never come back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.aggregator.domain import inbox_cutoff

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
RETENTION = timedelta(hours=96)


def test_caught_up_groups_leave_the_retention_before_now() -> None:
    floors = [NOW - timedelta(seconds=1), NOW - timedelta(minutes=5)]
    assert inbox_cutoff(NOW, floors, RETENTION) == NOW - timedelta(minutes=5) - RETENTION


def test_a_floor_in_the_future_never_moves_the_cutoff_past_now() -> None:
    # Redis' clock ahead of ours.
    assert inbox_cutoff(NOW, [NOW + timedelta(hours=3)], RETENTION) == NOW - RETENTION


def test_the_oldest_floor_decides() -> None:
    old = NOW - timedelta(days=10)
    assert inbox_cutoff(NOW, [NOW, old], RETENTION) == old - RETENTION


@pytest.mark.parametrize("floors", [[], [NOW, None]])
def test_an_unknown_floor_keeps_everything(floors: list[datetime | None]) -> None:
    assert inbox_cutoff(NOW, floors, RETENTION) is None
