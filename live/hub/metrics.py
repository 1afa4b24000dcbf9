"""The hub's Prometheus metrics (merged across worker processes like the rest of /metrics).
Sockets per broadcast are the fan-out engine's `hawker_fanout_sockets`."""
from __future__ import annotations

from prometheus_client import Counter, Histogram

from live.metrics import LATENCY_BUCKETS, OVERLOAD_ANSWERS

__all__ = ["OVERLOAD_ANSWERS"]  # shared with the HTTP side (live/metrics.py)

HUB_COMMANDS = Counter("hawker_hub_commands_total", "Client events handled by the hub, by event and result code",
                       ["event", "code"])
HUB_CONNECTS = Counter("hawker_hub_connects_total", "Socket connection attempts, by result code", ["code"])
HUB_SALE_EVENTS = Counter("hawker_hub_sale_events_total", "Sale lifecycle events sent (once across nodes)", ["event"])

HUB_COMMAND_SECONDS = Histogram(
    "hawker_hub_command_seconds", "Socket command latency, event received -> ack, by event and result code",
    ["event", "code"], buckets=LATENCY_BUCKETS)
JOIN_SECONDS = Histogram(
    "hawker_join_seconds", "Socket join: connected -> snapshot sent, by completeness (whole | partial)",
    ["snapshot"], buckets=LATENCY_BUCKETS)
SNAPSHOT_PART_FAILURES = Counter(
    "hawker_snapshot_part_failures_total", "Join snapshot parts that failed (before retries), by part", ["part"])
RESERVE_SECONDS = Histogram(
    "hawker_sale_reserve_seconds", "sale.reserve received -> ack, by result code", ["code"], buckets=LATENCY_BUCKETS)
RESERVE_AFTER_OPEN_SECONDS = Histogram(
    "hawker_sale_reserve_after_open_seconds",
    "For reserves in a sale's first minute: the ack's server time minus the sale's opens_at",
    buckets=LATENCY_BUCKETS)
