"""Aggregator: consumes both streams into live coverage figures, served over HTTP and SSE."""
