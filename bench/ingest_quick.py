"""Item 3 of `make bench` alone: activity's single and batch ingest (see bench/ingest.py).

python -m bench.ingest_quick [--quick]   # the same as: python -m bench --only ingest
"""

from __future__ import annotations

import sys

from bench.__main__ import cli

if __name__ == "__main__":
    sys.argv[1:1] = ["--only", "ingest"]
    cli()
