"""The outbound side of services/auth: the `auth` schema's tables, key store and key verifier."""
