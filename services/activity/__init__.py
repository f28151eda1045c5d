"""Activity: support work done by teams; emits activity.events.v1."""
