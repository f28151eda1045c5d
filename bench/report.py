"""The bench's output: bench/results/<date>.json (every run) and <date>.md (the table)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.harness import AUTH, ItemResult

RESULTS = Path(__file__).parent / "results"


@dataclass
class Report:
    mode: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    machine: dict[str, Any] = field(default_factory=dict)
    items: list[ItemResult] = field(default_factory=list)

    @property
    def stem(self) -> str:
        day = self.started.strftime("%Y-%m-%d")
        return day if self.mode == "full" else f"{day}-{self.mode}"

    def as_json(self) -> dict[str, Any]:
        return {
            "date": self.started.isoformat(),
            "mode": self.mode,
            "commit": _commit(),
            "auth": AUTH,
            "machine": self.machine,
            "rows": [row.as_json() for item in self.items for row in item.rows],
            "items": {
                item.item: {"title": item.title, "seconds": item.seconds, **item.details}
                for item in self.items
            },
        }

    def markdown(self) -> str:
        machine = self.machine
        lines = [
            f"cdtt bench, {self.mode} mode, {self.started:%Y-%m-%d %H:%M} UTC, commit "
            f"{_commit()}; {machine.get('cpus')} CPUs shared with other work (load average "
            f"{machine.get('load_before', '?')} before, {machine.get('load_after', '?')} after); "
            f"services run with CDTT_AUTH={AUTH}. Ratios are medians of per-run ratios, "
            "each run measuring cdtt and its raw baseline back to back.",
            "",
            "| # | measure | cdtt | baseline | result | target | met |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for item in self.items:
            for row in item.rows:
                met = "—" if row.met is None else ("yes" if row.met else "**no**")
                lines.append(
                    f"| {row.item} | {row.measure} | {row.ours} | {row.baseline} | "
                    f"{row.result} | {row.target} | {met} |"
                )
        notes = [
            f"- {row.item}: {row.note}" for item in self.items for row in item.rows if row.note
        ]
        if notes:
            lines += ["", *notes]
        return "\n".join(lines) + "\n"

    def write(self, directory: Path = RESULTS) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        json_path = directory / f"{self.stem}.json"
        md_path = directory / f"{self.stem}.md"
        # orjson writes NaN (a figure that could not be taken) as null.
        json_path.write_bytes(orjson.dumps(self.as_json(), option=orjson.OPT_INDENT_2))
        md_path.write_text(self.markdown(), encoding="utf-8")
        return json_path, md_path


def _commit() -> str:
    if named := os.environ.get("BENCH_COMMIT"):  # a run from an exported tree names its commit
        return named
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def load_text(load: Sequence[float]) -> str:
    return " / ".join(f"{value:.1f}" for value in load)
