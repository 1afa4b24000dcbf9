"""Per-broadcast analytics a merchant runs the show for: counted incrementally in Redis.

A library like the other domain packages: it knows nothing of sockets or HTTP and imports nothing
of ours. `live/analytics_feed.py` feeds it from the hub's events; `Tally` gathers them in memory
between flushes, `AnalyticsStore.flush` writes one tick's worth in one pipeline, and
`AnalyticsStore.report` reads a broadcast's figures back (per minute, per sale, per show)."""
from analytics.report import CSV_COLUMNS, report_csv
from analytics.store import AnalyticsStore, OrderFact, StockFact
from analytics.tally import Tally

__all__ = ["CSV_COLUMNS", "AnalyticsStore", "OrderFact", "StockFact", "Tally", "report_csv"]
