"""Crash points for the fault-injection suite: a named point kills the process when armed.

Armed only through CDTT_FAULTS (comma-separated point names), which tests set on the
processes they start; unarmed, a point costs one set lookup.
"""

from __future__ import annotations

import os
import signal


def _armed() -> frozenset[str]:
    return frozenset(p for p in os.environ.get("CDTT_FAULTS", "").split(",") if p)


ARMED = _armed()


def crash_point(name: str) -> None:
    """SIGKILL this process here if the point is armed: no cleanup, as a real crash."""
    if name in ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
