"""Cells of the tables the project writes for spreadsheets (the aggregator's CSV, key lists).

A spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
as a formula (CSV injection): a village named `=HYPERLINK(...)` would become a link that
sends the sheet's data away. OWASP's rule: such a cell gets a leading `'`, which the
spreadsheet shows as text and which a reader sees as the name with a quote before it.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell[T](value: T) -> T | str:
    """Text that starts like a formula, quoted so it stays text; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
