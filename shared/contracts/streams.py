"""Names of the streams, consumer groups and dead-letter streams that join the services."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
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


def partition_of(province_code: str, partitions: int) -> int:
    """The partition of a province's events: its code as a number, modulo the partitions.

    Codes are numbers ("15" → 15 % P), so the mapping is one a reader can do by hand; any
    other code falls back to CRC-32. A team's events carry its home province first in
    `unit_path`, so one team's events stay in order in one partition.
    """
    if partitions == 1:
        return 0
    number = int(province_code) if province_code.isdigit() else zlib.crc32(province_code.encode())
    return number % partitions


@dataclass(frozen=True)
class StreamLayout:
    """Where a logical stream's entries live: its partitions' keys and their dead letters.

    One partition (the default) keeps the names of a single stream byte for byte. With P
    partitions a stream is P keys, `<stream>.p<i>`. On a Redis Cluster a dead-letter
    stream is named `{<key>}.dead`: its hash tag is its stream's whole key, which hashes
    to the same slot as the key itself, so the MULTI that writes the dead letter and
    acknowledges the entry never crosses slots.
    """

    namespace: str = ""
    partitions: int = 1
    cluster: bool = False

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError("a stream has at least one partition")
        if "{" in self.namespace or "}" in self.namespace:
            raise ValueError("a stream namespace may not hold braces (Redis hash tags)")

    def keys(self, stream: str) -> tuple[str, ...]:
        """Every partition's key of `stream`, partition 0 first."""
        base = stream_key(stream, self.namespace)
        if self.partitions == 1:
            return (base,)
        return tuple(f"{base}.p{index}" for index in range(self.partitions))

    def key_for(self, stream: str, province_code: str) -> str:
        """The key an event of `province_code` goes to."""
        return self.keys(stream)[partition_of(province_code, self.partitions)]

    def dead_letter(self, key: str) -> str:
        """The dead-letter stream of the partition `key`."""
        return f"{{{key}}}.dead" if self.cluster else f"{key}.dead"

    def dead_letters(self, stream: str) -> tuple[str, ...]:
        return tuple(self.dead_letter(key) for key in self.keys(stream))

    @property
    def partitions_key(self) -> str:
        """Where the deployment records its partition count (checked by every starter)."""
        return f"{self.namespace}cdtt.stream_partitions"
