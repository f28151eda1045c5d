"""How input reaches the aggregator service: HTTP routers and stream subscribers."""
