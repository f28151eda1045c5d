"""How input reaches the activity service: HTTP routers and stream subscribers."""
