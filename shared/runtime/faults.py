"""Crash points for the fault-injection suite: a named point kills the process when armed.

Armed only through CDTT_FAULTS, which tests set on the processes they start: a
comma-separated list of point names, each optionally `@N` to kill on the Nth time the
point is reached instead of the first (`aggregator.before_commit@20` lets nineteen
batches through, so the kill lands under load). Unarmed, a point costs one dict lookup.

Points: relay.before_xadd and relay.after_xadd (shared/messaging/outbox.py: the rows are claimed
in the relay's transaction; before or after their XADD, never marked sent),
consumer.before_ack (shared/messaging/consumer.py: the handler committed, the entries not acked),
aggregator.before_commit and aggregator.after_commit (the aggregator's batch
transaction, services/aggregator/entrypoints/subscribers.py).
"""

from __future__ import annotations

import os
import signal
from collections import Counter


def _armed() -> dict[str, int]:
    """Each armed point and the pass on which it kills (1: the first)."""
    armed: dict[str, int] = {}
    for item in os.environ.get("CDTT_FAULTS", "").split(","):
        name, _, nth = item.strip().partition("@")
        if name:
            armed[name] = int(nth) if nth else 1
    return armed


ARMED = _armed()
_passes: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """SIGKILL this process here if the point is armed: no cleanup, as a real crash."""
    kill_on = ARMED.get(name)
    if kill_on is None:
        return
    _passes[name] += 1
    if _passes[name] >= kill_on:
        os.kill(os.getpid(), signal.SIGKILL)
