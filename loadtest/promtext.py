"""Reading the server's /metrics (Prometheus text format) from a load test: counters and the
quantiles of a histogram between two scrapes (the server's own view of a run)."""
from __future__ import annotations

import math
import re
from typing import Any

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[str, Any]:
    """{"counters": {(name, labels): value}, "buckets": {name: {le: cumulative count}}} where
    buckets are summed over every label set of a histogram (all events, all codes)."""
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    buckets: dict[str, dict[float, float]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        name, labels_raw, value = m.group(1), m.group(3) or "", m.group(4)
        try:
            v = float(value)
        except ValueError:
            continue
        labels = dict(_LABEL.findall(labels_raw))
        if name.endswith("_bucket") and "le" in labels:
            le = math.inf if labels["le"] == "+Inf" else float(labels["le"])
            per = buckets.setdefault(name[: -len("_bucket")], {})
            per[le] = per.get(le, 0.0) + v
        else:
            key = (name, tuple(sorted(labels.items())))
            counters[key] = counters.get(key, 0.0) + v
    return {"counters": counters, "buckets": buckets}


def histogram_quantile(before: dict[str, Any], after: dict[str, Any], name: str, q: float) -> float | None:
    """The q-quantile (seconds) of what histogram `name` observed between two scrapes, linearly
    interpolated inside its bucket as Prometheus does; None when it observed nothing."""
    b0 = before["buckets"].get(name, {})
    b1 = after["buckets"].get(name, {})
    les = sorted(b1)
    deltas = [(le, b1[le] - b0.get(le, 0.0)) for le in les]
    if not deltas or deltas[-1][1] <= 0:
        return None
    total = deltas[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in deltas:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le
