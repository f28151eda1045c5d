"""End-to-end fixtures: the services as real processes (see tests/e2e/stack.py)."""

from tests.e2e.stack import stack

__all__ = ["stack"]
