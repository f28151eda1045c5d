"""Item 6: `cdtt aggregator rebuild` over the stream entries vs item 1's live apply rate.

Both streams of a scratch namespace hold a hierarchy's unit and team events and then
support events (300,000 in all in full mode, 20,000 in --quick). Each run is the real command, as an
operator runs it (`cdtt aggregator rebuild`, its own process, timed from start to exit),
reading every entry into shadow tables and swapping them in. Events/s is entries read
over that wall time; the ratio divides it by the median apply rate item 1 measured for
the live consumer in the same bench run.
"""

from __future__ import annotations

import asyncio
import os
import time

from redis.asyncio import Redis

from bench import apply, traffic
from bench.harness import ItemResult, Row, Scratch, fmt_rate, median, rate, service_env
from cdtt.stack import cdtt_command
from shared.runtime.settings import Settings


async def rebuild_once(settings: Settings) -> float:
    """Seconds `cdtt aggregator rebuild` took, start to exit."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *cdtt_command(),
        "aggregator",
        "rebuild",
        env=service_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"rebuild exited {process.returncode}: {(out + err).decode()[-2000:]}")
    return seconds


async def run(scratch: Scratch, *, quick: bool, apply_result: ItemResult | None) -> ItemResult:
    if apply_result is None:
        apply_result = await apply.run(scratch, quick=quick)
    apply_rate = float(apply_result.details["apply"]["median_ours"])
    # Full mode rebuilds 300,000 entries (about a minute here) rather than the brief's
    # million, to stay within 20 minutes; BENCH_REBUILD_ENTRIES overrides it.
    total, runs = (20_000, 1) if quick else (300_000, 1)
    total = int(os.environ.get("BENCH_REBUILD_ENTRIES", total))
    tree = traffic.hierarchy(4, 50, 10)
    registry_events = [*traffic.unit_envelopes(tree), *traffic.team_envelopes(tree)]
    support = traffic.support_envelopes(tree, total - len(registry_events), seed=6)
    traffic.check_shapes(registry_events, support)
    rates = []
    async with scratch.space("rebuild") as settings:
        redis = Redis.from_url(settings.require_redis_url())
        try:
            await traffic.fill(
                redis, traffic.registry_key(settings.stream_namespace), registry_events
            )
            await traffic.fill(redis, traffic.activity_key(settings.stream_namespace), support)
        finally:
            await redis.aclose()
        del support
        for _ in range(runs):
            rates.append(rate(total, await rebuild_once(settings)))
    ratio = median(rates) / apply_rate
    result = ItemResult("6", "Rebuild")
    result.rows.append(
        Row(
            "6",
            f"cdtt aggregator rebuild, {total:,} entries ({runs} run{'s' if runs > 1 else ''}, "
            "process start to exit)",
            fmt_rate(median(rates)),
            fmt_rate(apply_rate) + " (item 1's live apply rate)",
            f"{ratio:.2f}×",
            "reported (no target)",
            None,
        )
    )
    result.details = {"entries": total, "rates": rates, "apply_rate": apply_rate}
    return result
