"""StreamLayout and partition_of: where each province's events go, and their dead letters."""

from __future__ import annotations

import pytest

from shared.contracts.streams import REGISTRY_EVENTS, StreamLayout, dead_letter_key, partition_of


def test_one_partition_keeps_todays_names_byte_for_byte() -> None:
    layout = StreamLayout(namespace="ns:")
    assert layout.keys(REGISTRY_EVENTS) == ("ns:registry.events.v1",)
    assert layout.key_for(REGISTRY_EVENTS, "15") == "ns:registry.events.v1"
    assert layout.dead_letter("ns:registry.events.v1") == dead_letter_key(REGISTRY_EVENTS, "ns:")
    assert layout.dead_letters(REGISTRY_EVENTS) == ("ns:registry.events.v1.dead",)


def test_partitions_take_the_province_code_modulo_their_count() -> None:
    layout = StreamLayout(partitions=4)
    assert layout.keys(REGISTRY_EVENTS) == tuple(f"registry.events.v1.p{i}" for i in range(4))
    assert layout.key_for(REGISTRY_EVENTS, "15") == "registry.events.v1.p3"
    assert layout.key_for(REGISTRY_EVENTS, "01") == "registry.events.v1.p1"
    assert [partition_of(code, 4) for code in ("04", "08", "12")] == [0, 0, 0]
    assert partition_of("15", 1) == 0


def test_codes_that_are_not_numbers_still_land_in_a_stable_partition() -> None:
    assert partition_of("HN", 4) == partition_of("HN", 4)
    assert 0 <= partition_of("HN", 4) < 4


def test_on_a_cluster_a_dead_letter_carries_its_streams_key_as_hash_tag() -> None:
    layout = StreamLayout(partitions=2, cluster=True)
    assert layout.dead_letters(REGISTRY_EVENTS) == (
        "{registry.events.v1.p0}.dead",
        "{registry.events.v1.p1}.dead",
    )


def test_braces_in_a_namespace_are_refused() -> None:
    with pytest.raises(ValueError, match="braces"):
        StreamLayout(namespace="{x}")
    with pytest.raises(ValueError, match="at least one"):
        StreamLayout(partitions=0)
