"""Prometheus metrics. With several worker processes, each writes to PROMETHEUS_MULTIPROC_DIR and
`/metrics` merges them, so one scrape covers every process."""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

HTTP_REQUESTS = Counter("hawker_http_requests_total", "HTTP requests answered", ["method", "status"])
PROCESS_UP = Gauge("hawker_process_up", "1 per running server process", multiprocess_mode="livesum")
EVENT_LOOP_LAG = Histogram(
    "hawker_event_loop_lag_seconds", "How late the event loop woke a 100 ms timer",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def render() -> tuple[bytes, str]:
    """The text exposition for this process, or for all processes in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST

# The server's own latency figures (what a load test reports as the server's side). Fine between
# 50 ms and 1 s, where the load test's targets are: a quantile is interpolated inside its bucket,
# and with only 100 / 250 / 500 ms edges a p99 of 130 ms read as 246 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75,
                   1, 2.5, 5, 10)
REDIS_ROUND_TRIP = Histogram(
    "hawker_redis_seconds",
    "Redis round trip by operation (a command, or script:<name> for a pipeline of scripts; blocking reads are not timed)",
    ["op"], buckets=LATENCY_BUCKETS,
)


OVERLOAD_ANSWERS = Counter(
    "hawker_overload_answers_total", "Answers that told the client to retry (BUSY / UNAVAILABLE), by code and where",
    ["code", "where"])


def observe_redis(op: str, seconds: float) -> None:
    """The Redis layer's timer (redislayer.RedisTimer)."""
    REDIS_ROUND_TRIP.labels(op).observe(seconds)
