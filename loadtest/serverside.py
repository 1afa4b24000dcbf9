"""The server's own view of a run: /metrics scraped before, during (every few seconds) and after,
turned into server-side p50/p99 beside the clients' figures. Over the network only; sends
`Authorization: Bearer <HAWKER_METRICS_TOKEN>` when given one."""
from __future__ import annotations

import threading
import time
import urllib.request
from typing import Any

from loadtest.promtext import histogram_quantile, parse_metrics

# (figure prefix, histogram) - each gives <prefix>_p50_ms and <prefix>_p99_ms
HISTOGRAMS = (
    ("server_reserve", "hawker_sale_reserve_seconds"),
    ("server_reserve_after_open", "hawker_sale_reserve_after_open_seconds"),
    ("server_tick_lag", "hawker_fanout_tick_lag_seconds"),
    ("server_command", "hawker_hub_command_seconds"),
    ("server_join", "hawker_join_seconds"),
    ("server_redis", "hawker_redis_seconds"),
    ("server_loop_lag", "hawker_event_loop_lag_seconds"),
)


def scrape(url: str, token: str | None = None, timeout: float = 15) -> dict[str, Any]:
    req = urllib.request.Request(url.rstrip("/") + "/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return parse_metrics(resp.read().decode())


def counter_delta(before: dict[str, Any], after: dict[str, Any], name: str, by: str) -> dict[str, int]:
    """How much counter `name` grew between two scrapes, summed by label `by`."""
    out: dict[str, int] = {}
    for key, val in after["counters"].items():
        if key[0] != name:
            continue
        label = dict(key[1]).get(by, "")
        d = val - before["counters"].get(key, 0.0)
        if d:
            out[label] = out.get(label, 0) + int(round(d))
    return out


def figures(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Server-side quantiles (ms) of what each histogram observed between the two scrapes."""
    out: dict[str, Any] = {}
    for prefix, name in HISTOGRAMS:
        for q in (50, 99):
            v = histogram_quantile(before, after, name, q / 100) if before and after else None
            out[f"{prefix}_p{q}_ms"] = None if v is None else round(v * 1000, 1)
    out["server_overload_answers"] = counter_delta(before, after, "hawker_overload_answers_total", "code") \
        if before and after else {}
    return out


class Scraper(threading.Thread):
    """Scrapes every `every_s` seconds; `timeline()` gives server tick-lag and reserve p99 per interval."""

    def __init__(self, url: str, token: str | None, every_s: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.every_s = url, token, every_s
        self.scrapes: list[tuple[float, dict[str, Any]]] = []
        self.stop_event = threading.Event()
        self.errors = 0

    def take(self) -> dict[str, Any] | None:
        try:
            m = scrape(self.url, self.token)
        except Exception:  # noqa: BLE001 - a missed scrape is a gap in the chart, not a failed run
            self.errors += 1
            return None
        self.scrapes.append((time.time(), m))
        return m

    def run(self) -> None:
        while not self.stop_event.wait(self.every_s):
            self.take()

    def timeline(self) -> list[tuple[float, float | None, float | None]]:
        """(epoch s, tick-lag p99 ms, reserve p99 ms) of each interval between consecutive scrapes."""
        rows = []
        for (_t0, a), (t1, b) in zip(self.scrapes, self.scrapes[1:]):
            lag = histogram_quantile(a, b, "hawker_fanout_tick_lag_seconds", 0.99)
            res = histogram_quantile(a, b, "hawker_sale_reserve_seconds", 0.99)
            rows.append((t1, None if lag is None else round(lag * 1000, 1), None if res is None else round(res * 1000, 1)))
        return rows
