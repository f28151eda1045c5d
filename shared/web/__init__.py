"""HTTP plumbing every service shares: app factory, errors, limits, idempotency, key checks."""
