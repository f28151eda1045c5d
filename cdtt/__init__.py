"""The `cdtt` command: composes the services for operators and developers."""
