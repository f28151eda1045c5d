"""Item 1 of `make bench` alone: the aggregator's apply rate vs the raw loop (see bench/apply.py).

python -m bench.aggregator_apply [--quick]   # the same as: python -m bench --only apply
"""

from __future__ import annotations

import sys

from bench.__main__ import cli

if __name__ == "__main__":
    sys.argv[1:1] = ["--only", "apply"]
    cli()
