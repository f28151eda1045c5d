"""Operator commands: `cdtt check` (recount against the figures) and `cdtt streams trim`."""
