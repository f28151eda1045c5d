"""What crosses service boundaries: event contracts, stream names, outbox, db and settings."""
