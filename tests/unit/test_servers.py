"""How the test harness finds its servers (tests/servers.py), checked without starting any."""

from __future__ import annotations

import pytest

from tests.servers import POSTGRES_IMAGE, VALKEY_IMAGE, build_containers, urls_from

REDIS = "redis://127.0.0.1:6379/0"
DATABASE = "postgresql://postgres@127.0.0.1:5432/test"


def test_both_urls_are_used_and_neither_means_embedded() -> None:
    both = {"CDTT_REDIS_URL": REDIS, "CDTT_DATABASE_URL": DATABASE}
    assert urls_from(both) == (REDIS, DATABASE)
    assert urls_from({}) is None
    assert urls_from({"CDTT_REDIS_URL": "", "CDTT_DATABASE_URL": ""}) is None


@pytest.mark.parametrize(
    ("given", "missing"),
    [("CDTT_REDIS_URL", "CDTT_DATABASE_URL"), ("CDTT_DATABASE_URL", "CDTT_REDIS_URL")],
)
def test_one_url_alone_is_an_error_naming_the_other(given: str, missing: str) -> None:
    with pytest.raises(ValueError, match=f"^{given} is set but {missing} is not"):
        urls_from({given: REDIS if "REDIS" in given else DATABASE})


def test_containers_are_built_against_the_pinned_testcontainers_api() -> None:
    # A fixed API version: docker's client then needs no engine until a container starts.
    postgres, valkey = build_containers({"version": "1.44"})
    assert postgres.image.endswith(POSTGRES_IMAGE)
    assert valkey.image.endswith(VALKEY_IMAGE)
    assert VALKEY_IMAGE.startswith("valkey/")  # free software, as compose's
    assert postgres.ports == {"5432": None}
    assert valkey.ports == {"6379": None}
    assert postgres.driver == ""  # libpq URLs, as Settings takes them
    postgres._configure()  # what start() sets before it runs the container
    assert {k: postgres.env[k] for k in ("POSTGRES_USER", "POSTGRES_DB")} == {
        "POSTGRES_USER": "cdtt",
        "POSTGRES_DB": "cdtt",
    }
    assert postgres._container is None  # nothing was started
