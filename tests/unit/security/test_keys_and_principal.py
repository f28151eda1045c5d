"""API key text, hashing, key rules and what a principal may write and read (no I/O)."""

from __future__ import annotations

import pytest

from services.auth.domain import KeyRuleError, check_key_rules
from shared.runtime.settings import Settings
from shared.web.auth import InsecureSettingsError, check_auth_allowed, loopback_only
from shared.web.keys import generate_key, hash_matches, key_hash, key_id_of
from shared.web.principal import ANONYMOUS_ADMIN, ForbiddenError, Principal

PUBLISHER_15 = Principal(
    key_id="aaaaaaaaaaaa", role="publisher", edition="legacy", province_code="15"
)
OPERATOR = Principal(key_id="bbbbbbbbbbbb", role="operator")
OPERATOR_20 = Principal(
    key_id="cccccccccccc", role="operator", edition="legacy", province_code="20"
)
ADMIN = Principal(key_id="dddddddddddd", role="admin")
LANG_THIP = ("15", "136", "04378")


def test_a_new_key_reads_back_its_id_and_only_its_hash_matches() -> None:
    first, second = generate_key(), generate_key()
    assert first.key_id != second.key_id
    assert first.text.startswith(f"cdtt_{first.key_id}_")
    assert key_id_of(first.text) == first.key_id
    assert len(first.text.split("_", 2)[2]) == 43  # 32 random bytes, URL-safe base64
    assert hash_matches(first.text, first.secret_hash)
    assert not hash_matches(second.text, first.secret_hash)
    assert first.secret_hash == key_hash(first.text)
    assert first.text not in repr(first)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "cdtt_",
        "cdtt_0123456789ab",
        "cdtt_0123456789AB_" + "a" * 43,  # ids are lowercase hex
        "cdtt_0123456789ab_" + "a" * 42,
        "cdtt_0123456789ab_" + "a" * 44,
        "Bearer cdtt_0123456789ab_" + "a" * 43,
        "cdtt_0123456789ab_" + "a" * 42 + "\n",
        "cdtt_0123456789ab_' OR '1'='1' -- aaaaaaaaaaaaaaaaaaaaaa",
        "xdtt_0123456789ab_" + "a" * 43,
    ],
)
def test_anything_but_a_well_formed_key_has_no_id(text: str) -> None:
    assert key_id_of(text) is None


def test_a_publisher_writes_only_inside_its_province() -> None:
    PUBLISHER_15.require_write("legacy", LANG_THIP)
    with pytest.raises(ForbiddenError) as refused:
        PUBLISHER_15.require_write("legacy", ("20", "178"))
    assert refused.value.status == 403
    assert refused.value.code == "outside_scope"
    assert "province 15 (edition legacy)" in refused.value.message
    assert "is in province 20" in refused.value.message
    # The same code in the other edition is another province altogether.
    with pytest.raises(ForbiddenError):
        PUBLISHER_15.require_write("2025", ("15",))


def test_operators_never_write_and_admins_write_anywhere() -> None:
    with pytest.raises(ForbiddenError) as refused:
        OPERATOR.require_write("legacy", LANG_THIP)
    assert refused.value.code == "role_not_allowed"
    assert "operator keys may not write" in refused.value.message
    ADMIN.require_write("2025", ("01",))
    ANONYMOUS_ADMIN.require_write("legacy", LANG_THIP)
    assert ANONYMOUS_ADMIN.actor == "anonymous"
    assert PUBLISHER_15.actor == "aaaaaaaaaaaa"


def test_reads_follow_the_keys_province() -> None:
    OPERATOR.require_read("legacy", LANG_THIP)
    OPERATOR.require_everywhere("legacy", "the national figures")
    OPERATOR_20.require_read("legacy", ("20",))
    with pytest.raises(ForbiddenError):
        OPERATOR_20.require_read("legacy", LANG_THIP)
    with pytest.raises(ForbiddenError) as national:
        OPERATOR_20.require_everywhere("legacy", "the national figures")
    assert national.value.details["province"] == "20"
    assert national.value.details["edition"] == "legacy"
    assert not OPERATOR_20.covers("legacy", ())  # the nation is not inside a province


@pytest.mark.parametrize(
    ("role", "province", "edition", "message"),
    [
        ("publisher", None, None, "bound to a province"),
        ("admin", "15", "legacy", "not bound to a province"),
        ("root", None, None, "role must be one of"),
        ("operator", "1", "legacy", "two digits"),
        ("operator", "15; DROP TABLE", "legacy", "two digits"),
        ("publisher", "15", "1999", "edition must be one of"),
    ],
)
def test_keys_that_may_not_exist_are_refused(
    role: str, province: str | None, edition: str | None, message: str
) -> None:
    with pytest.raises(KeyRuleError, match=message):
        check_key_rules(role, province, edition, "")


def test_key_rules_accept_the_three_roles() -> None:
    assert check_key_rules("publisher", "15", "legacy", "Yên Bái") == ("publisher", "legacy")
    assert check_key_rules("operator", None, None, "") == ("operator", None)
    assert check_key_rules("admin", None, "legacy", "") == ("admin", None)


def test_auth_off_is_refused_in_production_only() -> None:
    def settings(**values: object) -> Settings:
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    with pytest.raises(InsecureSettingsError, match="CDTT_AUTH=off"):
        check_auth_allowed(settings(env="production", auth=False))
    check_auth_allowed(settings(env="production", auth=True))
    check_auth_allowed(settings(env="development", auth=False))
    assert settings().auth is True  # on unless said otherwise


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.10", False),
        ("no-such-host.invalid", False),
    ],
)
def test_keyless_serving_is_allowed_on_loopback_only(host: str, loopback: bool) -> None:
    assert loopback_only(host) is loopback
