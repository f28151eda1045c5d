"""Registry: administrative units, teams and members; emits registry.events.v1."""
