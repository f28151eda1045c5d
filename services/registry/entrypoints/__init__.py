"""How input reaches the registry service: HTTP routers and stream subscribers."""
