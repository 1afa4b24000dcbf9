"""Raw samples: one CSV row per measurement, written by every Locust process and merged by the runner."""
from __future__ import annotations

import csv
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

KINDS = ("join", "join_retry", "rejoin", "chat_latency", "chat_ack", "tick_latency", "reserve", "reserve_retry", "pay", "order", "abandon",
         "vote", "clock_offset")  # "order": user = order id


@dataclass(frozen=True, slots=True)
class Sample:
    kind: str  # one of KINDS
    at_ms: int  # client wall clock, ms
    value_ms: float  # latency (or offset for clock_offset)
    code: str = "OK"  # result code: OK or the error code the server sent
    user: str = ""


COLUMNS = [f.name for f in fields(Sample)]


class SampleWriter:
    """Thread/greenlet-safe appender to `<dir>/samples-<pid>.csv`; flushed on every `flush()`."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / f"samples-{os.getpid()}.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rows: list[Sample] = []
        self._lock = threading.Lock()
        if not self.path.exists():
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(COLUMNS)

    def add(self, sample: Sample) -> None:
        with self._lock:
            self._rows.append(sample)
        if len(self._rows) >= 500:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if rows:
            with self.path.open("a", newline="") as f:
                w = csv.writer(f)
                for s in rows:
                    w.writerow([s.kind, s.at_ms, f"{s.value_ms:.3f}", s.code, s.user])


def read_all(folder: str | os.PathLike[str]) -> list[Sample]:
    """Every sample written into `folder` by any process."""
    return list(_iter(sorted(Path(folder).glob("samples-*.csv"))))


def _iter(paths: Iterable[Path]) -> Iterator[Sample]:
    for p in paths:
        with p.open(newline="") as f:
            for row in csv.DictReader(f):
                yield Sample(row["kind"], int(row["at_ms"]), float(row["value_ms"]), row["code"], row["user"])


def write_merged(samples: list[Sample], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for s in sorted(samples, key=lambda s: s.at_ms):
            w.writerow([s.kind, s.at_ms, f"{s.value_ms:.3f}", s.code, s.user])


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]
