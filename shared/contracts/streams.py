"""Names of the streams, consumer groups and dead-letter streams that join the services."""

from __future__ import annotations

from typing import Final

REGISTRY_EVENTS: Final = "registry.events.v1"
ACTIVITY_EVENTS: Final = "activity.events.v1"
STREAMS: Final = (REGISTRY_EVENTS, ACTIVITY_EVENTS)

ACTIVITY_GROUP: Final = "activity"
AGGREGATOR_GROUP: Final = "aggregator"

# Which groups read each stream: an entry is done with once all of them acknowledged it
# (what `cdtt streams trim` waits for before it removes anything).
READERS: Final = {
    REGISTRY_EVENTS: (ACTIVITY_GROUP, AGGREGATOR_GROUP),
    ACTIVITY_EVENTS: (AGGREGATOR_GROUP,),
}

# The one field of every stream entry: the JSON envelope, readable with plain XRANGE.
ENVELOPE_FIELD: Final = "envelope"


def stream_key(stream: str, namespace: str = "") -> str:
    """The Redis key of a logical stream under a namespace ("" in production)."""
    return f"{namespace}{stream}"


def dead_letter_key(stream: str, namespace: str = "") -> str:
    """Where entries that keep failing go, beside their stream."""
    return f"{namespace}{stream}.dead"
