"""API keys as text: making one, reading its id back, and the hash that is all we keep.

A key reads `cdtt_<key_id>_<secret>`: the id is public (logs, events' `actor`, `cdtt keys
list`), the secret is 32 random bytes from `secrets`. Only SHA-256 of the whole key is
stored. A slow password hash (bcrypt, argon2) exists to stop guessing low-entropy
passwords from a stolen hash; 256 random bits cannot be guessed either way, so a fast
hash loses nothing and keeps verification off the hot path.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Final, Literal

Role = Literal["publisher", "operator", "admin"]
ROLES: Final[tuple[Role, ...]] = ("publisher", "operator", "admin")
KEY_PREFIX: Final = "cdtt_"
KEY_ID_HEX_LENGTH: Final = 12
_KEY = re.compile(r"^cdtt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewKey:
    """A freshly made key: its id, and its text, to be shown once and then forgotten."""

    key_id: str
    text: str = field(repr=False)

    @property
    def secret_hash(self) -> str:
        return key_hash(self.text)


def generate_key() -> NewKey:
    key_id = secrets.token_hex(KEY_ID_HEX_LENGTH // 2)
    return NewKey(key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}")


def key_id_of(text: str) -> str | None:
    """The id of a well-formed key, None for anything else (never raises)."""
    match = _KEY.match(text)
    return match.group(1) if match else None


def key_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hash_matches(text: str, stored_hash: str) -> bool:
    """Constant-time comparison, so timing tells nothing about the stored hash."""
    return hmac.compare_digest(key_hash(text), stored_hash)


def bearer_headers(key: str | None) -> dict[str, str]:
    """Headers for an HTTP client presenting `key` (none when no key is configured)."""
    return {"Authorization": f"Bearer {key}"} if key else {}
