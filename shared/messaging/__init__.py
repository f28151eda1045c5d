"""The outbox, its relay, the group reader and trimming: events from a database onto streams."""
