"""Prometheus metrics every service exposes at /metrics; one registry per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

http_request_seconds = Histogram(
    "cdtt_http_request_seconds",
    "HTTP request latency by route template and status class",
    ["service", "method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
events_published = Counter(
    "cdtt_events_published_total",
    "Events XADDed by an outbox relay",
    ["stream"],
    registry=REGISTRY,
)
events_consumed = Counter(
    "cdtt_events_consumed_total",
    "Events applied by a consumer group",
    ["group", "stream", "type"],
    registry=REGISTRY,
)
events_dead_lettered = Counter(
    "cdtt_events_dead_lettered_total",
    "Stream entries moved to a dead-letter stream",
    ["group", "stream"],
    registry=REGISTRY,
)
consumer_lag = Gauge(
    "cdtt_consumer_lag_entries",
    "Entries in the stream not yet delivered to the group",
    ["group", "stream"],
    registry=REGISTRY,
)
consumer_pending = Gauge(
    "cdtt_consumer_pending_entries",
    "Entries delivered to the group and not yet acknowledged",
    ["group", "stream"],
    registry=REGISTRY,
)
outbox_backlog = Gauge(
    "cdtt_outbox_backlog_rows",
    "Outbox rows not yet sent to their stream",
    ["service"],
    registry=REGISTRY,
)
