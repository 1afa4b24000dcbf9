"""Fan-out metrics (Prometheus). Counted once per frame fan-out, never once per socket call."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SOCKETS = Gauge("hawker_fanout_sockets", "Sockets joined to a broadcast on this node", ["broadcast"],
                multiprocess_mode="livesum")
DELIVERIES = Counter("hawker_fanout_deliveries_total", "Frames handed to sockets (one per socket per frame)", ["kind"])
BATCH_SIZE = Histogram("hawker_fanout_batch_items", "Items (chat lines, level keys, hearts) in one tick batch",
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
TICK_SECONDS = Histogram("hawker_fanout_tick_seconds", "Time to fan one tick out to every local socket",
                         buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25))
TICK_LAG = Histogram(
    "hawker_fanout_tick_lag_seconds",
    "Tick fan-out lag: when the tick was due -> its last frame handed to a socket's transport",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5))
TICK_PERIOD = Gauge("hawker_fanout_tick_period_seconds",
                    "Seconds between ticks on this node (tick_ms, stretched by HAWKER_FANOUT_MAX_WRITES_PER_S)",
                    multiprocess_mode="max")
DROPPED = Counter("hawker_fanout_dropped_frames_total", "Coalescible frames dropped for slow sockets")
SLOW_CLOSED = Counter("hawker_fanout_slow_closed_total", "Sockets closed for being too slow", ["reason"])
PUBLISHED = Counter("hawker_fanout_published_total", "Messages this node published to Redis", ["kind"])
PROTOCOL_CLOSED = Counter("hawker_fanout_protocol_closed_total",
                          "Sockets closed for a frame that could be neither decoded nor answered")
BAD_FRAMES = Counter("hawker_fanout_bad_frames_total",
                     "Client frames refused before any handler: malformed packets and bad event names", ["kind"])
