"""`make bench` (`python -m bench [--quick] [--only ITEM,...]`): each figure vs its raw baseline.

Runs against the machine's servers (CDTT_DATABASE_URL, CDTT_REDIS_URL; default
127.0.0.1), in scratch databases and stream namespaces of its own that it removes, and
writes bench/results/<date>.json and <date>.md (`<date>-quick.*` in --quick mode).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable

from bench import (
    apply,
    cluster,
    coverage_map,
    e2e,
    history,
    ingest,
    national,
    rebuild,
    reclaim,
    relay,
)
from bench.harness import ItemResult, Scratch
from bench.report import Report, load_text

Item = Callable[..., Awaitable[ItemResult]]
ITEMS: dict[str, Item] = {
    "apply": apply.run,
    "reclaim": reclaim.run,
    "relay": relay.run,
    "ingest": ingest.run,
    "e2e": e2e.run,
    "national": national.run,
    "rebuild": rebuild.run,
    "cluster": cluster.run,
    "map": coverage_map.run,
    "history": history.run,
}


async def main(names: list[str], quick: bool) -> Report:
    report = Report("quick" if quick else "full")
    report.machine = {"cpus": os.cpu_count(), "load_before": load_text(os.getloadavg())}
    scratch = Scratch()
    results: dict[str, ItemResult] = {}
    try:
        await scratch.prepare()
        for name in names:
            started = time.monotonic()
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            if name == "rebuild":
                result = await rebuild.run(scratch, quick=quick, apply_result=results.get("apply"))
            else:
                result = await ITEMS[name](scratch, quick=quick)
            result.seconds = round(time.monotonic() - started, 1)
            results[name] = result
            report.items.append(result)
            for row in result.rows:
                print(f"  {row.measure}: {row.result} (target {row.target})", file=sys.stderr)
            report.machine["load_after"] = load_text(os.getloadavg())
            report.write()  # after every item: a failure later keeps what was measured
    finally:
        await scratch.close()
    return report


def quiet_faststream() -> None:
    """The consumers the bench runs in-process log every subscriber callback at INFO (and
    FastStream sets its loggers' levels itself when a broker starts): keep warnings only."""

    def warnings_only(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING

    for name in ("faststream", "faststream.access.redis"):
        logging.getLogger(name).addFilter(warnings_only)


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, under 3 minutes")
    parser.add_argument(
        "--only", default=",".join(ITEMS), help=f"comma-separated items of {', '.join(ITEMS)}"
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ITEMS]
    if unknown:
        parser.error(f"unknown items {unknown}; choose from {list(ITEMS)}")
    quiet_faststream()
    started = time.monotonic()
    report = asyncio.run(main(names, args.quick))
    json_path, md_path = report.write()
    print(report.markdown())
    print(f"wrote {json_path} and {md_path} in {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    cli()
