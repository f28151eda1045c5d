"""The administrative map every event is placed on: editions, levels, unit codes and paths."""

from __future__ import annotations

from typing import Literal

# Two editions of the hierarchy live side by side; unit codes are reused between them with
# other meanings, so an edition always travels with a code.
Edition = Literal["2025", "legacy"]
EDITIONS: tuple[Edition, ...] = ("2025", "legacy")

Level = Literal["province", "district", "commune", "village"]
LEVELS: tuple[Level, ...] = ("province", "district", "commune", "village")
# The levels of each edition, top first; a unit's parent sits one level above it. The 2025
# edition has no districts (two tiers since 1 July 2025).
EDITION_LEVELS: dict[Edition, tuple[Level, ...]] = {
    "2025": ("province", "commune", "village"),
    "legacy": LEVELS,
}
UnitCode = str
UnitPath = tuple[UnitCode, ...]
