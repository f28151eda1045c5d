"""Render the fault suite's measurements (test-artifacts/faults.json) into docs/reliability.md.

`make faults` runs the suite three times per case, then this: `python -m tests.faults.report`.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "test-artifacts" / "faults.json"
TARGET = ROOT / "docs" / "reliability.md"

# The order of the table: the order of issue 8's list.
CASES = (
    "aggregator-before-commit",
    "aggregator-after-commit",
    "directory-consumer",
    "relay-before-xadd",
    "relay-after-xadd",
    "redis-data-lost",
    "postgres-restart",
    "duplicates",
    "out-of-order",
    "poison",
    "burst",
    "trim-under-lag",
)

INTRO = """# Reliability: faults under load, and what was counted

Every row is one case of `tests/faults/`. Each case starts the three services as real
processes (`cdtt serve`) on a fresh database and stream namespace, drives a steady load
through their HTTP APIs (asyncio + httpx, loopback only, at most 32 requests in flight;
scheduled at ~245 support events/s in 11 batches of 20 and 25 single posts, and ~38 team
writes/s: villages, teams, member additions and removals, dissolutions; what the
machine achieved is the Writes/s column), injects the fault, lets the system go quiet
(streams drained, nothing pending, no outbox row unsent) and then audits it:

- (a) every write answered 2xx is counted exactly once: `cdtt check` (the recount from
  the producers' tables equals the aggregator's figures, unit by unit) and direct reads:
  each accepted support event is in `activity.support_events` and in the aggregator's
  processed events, the national count equals the rows, every team's state in the
  aggregator equals the registry's, and each team's members and status equal what its
  answered writes say;
- (b) nothing refused (an error answer, or a connection refused) is stored or counted;
  writes whose connection broke before an answer ("unanswered") may be counted or not,
  never twice;
- (c) no entry pending or undelivered in any group, no outbox row unsent;
- (d) the dead-letter streams hold exactly the poison entries injected (none elsewhere).

Columns: writes per second of load (all answers, averaged over the case, so the fault's
own minutes count), writes per run as answered (2xx / refused / unanswered); support events
accepted → counted by the aggregator (counted may exceed accepted by unanswered writes
that landed); duplicate entries the aggregator absorbed (entries on the streams minus
events applied minus dead letters); dead-lettered entries; **recovered**: seconds from
the end of the fault (restart, server back, injection done) until every service is
ready, both producers answer 2xx again and the aggregator has applied everything the
streams held at that moment; **drained**: seconds from the end of the load until quiet.
Figures are medians over the runs (max in brackets).

How to run: `make faults` (each case three times, the burst for 60 s, then this page is
rendered from `test-artifacts/faults.json` by `python -m tests.faults.report`); the
normal `make test` runs each case once with a 10 s burst (CDTT_FAULT_REPEAT,
CDTT_FAULT_BURST_SECONDS). Crash points (`CDTT_FAULTS=<point>[@N]`, shared/runtime/faults.py)
kill a process with SIGKILL on the Nth pass. Redis and PostgreSQL faults run on private
servers started by the suite, never on the machine's shared ones.

Dependencies disappearing: in the Redis and PostgreSQL cases every service keeps its
process (no exit, no restart), answers `/readyz` 503 naming the missing dependency while
it is away, and 200 again after, with no manual step; producers answer 503, never 2xx,
while PostgreSQL is down, and keep accepting writes into their outboxes while Redis is.

Found and fixed by this suite: (1) a consumer retrying entries while PostgreSQL was
down counted each failed try as a delivery, so a 6 s outage dead-lettered good entries
(now an attempt that fails because a dependency is away is not counted:
shared/messaging/outages.py, XCLAIM RETRYCOUNT); (2) the aggregator counted events for units
nobody registered (now held back, retried, then dead-lettered; the rest of the batch
is acknowledged). Built for it: `cdtt streams trim` (shared/messaging/trimming.py), which removes
only entries every reading group has acknowledged.
"""


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _seconds(runs: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in runs if r.get(key) is not None]
    if not values:
        return "–"
    return f"{statistics.median(values):.1f} ({max(values):.1f})"


def _row(runs: list[dict[str, Any]], repeat: int) -> str:
    first = runs[0]
    writes = [r["writes"] for r in runs]
    answered = " / ".join(
        _number(_median(w[k] for w in writes)) for k in ("accepted", "refused", "unanswered")
    )
    support = (
        f"{_number(_median(r['support_accepted'] for r in runs))} → "
        f"{_number(_median(r['support_counted'] for r in runs))}"
    )
    rate = _number(_median(r.get("writes_per_s") for r in runs))
    return (
        f"| {first['fault']} | {first['injection']} | {len(runs)}/{repeat} | {rate} | {answered} | "
        f"{support} | {_number(_median(r['duplicates_absorbed'] for r in runs))} | "
        f"{_number(_median(r['dead_lettered'] for r in runs))} | "
        f"{_seconds(runs, 'recover_s')} | {_seconds(runs, 'drain_s')} |"
    )


NOTES = {
    "aggregator-before-commit": ("pending_at_kill", "entries pending with the killed consumer"),
    "aggregator-after-commit": ("pending_at_kill", "entries pending with the killed consumer"),
    "directory-consumer": ("pending_at_kill", "entries pending with the killed consumer"),
    "relay-before-xadd": ("pending_at_kill", "entries pending at the kill"),
    "relay-after-xadd": ("pending_at_kill", "entries pending at the kill"),
    "redis-data-lost": ("answered_while_down", "answers while Redis was away"),
    "postgres-restart": ("answered_while_down", "answers while PostgreSQL was down"),
    "burst": ("burst_pushed_back", "requests answered 429/503 during the burst"),
    "trim-under-lag": ("trimmed_entries", "entries trimmed while the aggregator was down"),
}


def render(document: dict[str, Any]) -> str:
    runs: dict[str, list[dict[str, Any]]] = {}
    for run in document["runs"]:
        runs.setdefault(run["case"], []).append(run)
    repeat = int(document["repeat"])
    lines = [
        INTRO,
        f"Last run: {document['generated_at']}, {repeat} run(s) per case, "
        f"{document['cpus']} CPUs shared with the other services of the machine.",
        "",
        "| Fault | Injected by | Runs passed | Writes/s | Writes 2xx / refused / unanswered | "
        "Support accepted → counted | Duplicates absorbed | Dead-lettered | "
        "Recovered s | Drained s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ordered = [c for c in CASES if c in runs] + sorted(set(runs) - set(CASES))
    lines += [_row(runs[case], repeat) for case in ordered]
    lines += ["", "Per case, as measured in each run:", ""]
    for case in ordered:
        details = []
        key, meaning = NOTES.get(case, ("", ""))
        if key:
            details.append(f"{meaning}: {', '.join(str(r.get(key)) for r in runs[case])}")
        recovery = [r.get("recovery", {}) for r in runs[case]]
        if any(recovery):
            details.append(f"recovery steps (s): {recovery}")
        details.append(f"`cdtt check`: {runs[case][-1]['check']}")
        lines.append(f"- **{case}**: " + "; ".join(details))
    return "\n".join(lines) + "\n"


def main() -> None:
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} not found: run the fault suite first (make faults)")
    TARGET.write_text(render(json.loads(SOURCE.read_text("utf-8"))), "utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
