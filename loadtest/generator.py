"""Is the load generator the bottleneck? Each generator process samples itself once a second (its
CPU, how late gevent woke a timer, how long one pass of the light-viewer loop took), and the run is
marked `generator_saturated` when any process passes 85 % CPU or 100 ms loop lag for more than 5 s
of the measured window. Client-side latencies of a saturated run describe the generator, not the
server, and the report says so first."""
from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

CPU_LIMIT_PCT = 85.0
LAG_LIMIT_MS = 100.0
OVER_LIMIT_S = 5


@dataclass(frozen=True, slots=True)
class GenSample:
    """One second of one generator process."""

    process: str  # host:pid of the generator process
    at_ms: int  # wall clock of that process
    cpu_pct: float  # of one core, all threads of the process
    gevent_lag_ms: float  # worst lateness of a 50 ms gevent timer in that second
    light_lag_ms: float  # longest pass of the light-viewer loop in that second
    viewers: int = 0  # light viewers connected in that process

    @property
    def over(self) -> bool:
        return self.cpu_pct > CPU_LIMIT_PCT or max(self.gevent_lag_ms, self.light_lag_ms) > LAG_LIMIT_MS


COLUMNS = [f.name for f in fields(GenSample)]


def verdict(samples: Iterable[GenSample], start_ms: int | None = None, end_ms: int | None = None) -> dict[str, Any]:
    """Per process: seconds over a limit inside [start_ms, end_ms], worst CPU and lag; saturated when
    any process was over for more than OVER_LIMIT_S seconds."""
    per: dict[str, dict[str, float]] = {}
    for s in samples:
        if (start_ms is not None and s.at_ms < start_ms) or (end_ms is not None and s.at_ms > end_ms):
            continue
        p = per.setdefault(s.process, {"seconds_over": 0, "cpu_max_pct": 0.0, "lag_max_ms": 0.0, "seconds": 0})
        p["seconds"] += 1
        p["seconds_over"] += 1 if s.over else 0
        p["cpu_max_pct"] = max(p["cpu_max_pct"], s.cpu_pct)
        p["lag_max_ms"] = max(p["lag_max_ms"], s.gevent_lag_ms, s.light_lag_ms)
    worst = max((p["seconds_over"] for p in per.values()), default=0)
    return {"generator_saturated": worst > OVER_LIMIT_S, "generator_seconds_over_max": int(worst),
            "generator_processes": len(per),
            "generator_cpu_max_pct": round(max((p["cpu_max_pct"] for p in per.values()), default=0.0), 1),
            "generator_lag_max_ms": round(max((p["lag_max_ms"] for p in per.values()), default=0.0), 1),
            "per_process": per}


def write(samples: Iterable[GenSample], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for s in sorted(samples, key=lambda s: (s.process, s.at_ms)):
            w.writerow([s.process, s.at_ms, s.cpu_pct, s.gevent_lag_ms, s.light_lag_ms, s.viewers])


def append_rows(path: Path, rows: Iterable[list[Any]]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(COLUMNS)
        w.writerows(rows)


def read(path: Path) -> list[GenSample]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [GenSample(r["process"], int(r["at_ms"]), float(r["cpu_pct"]), float(r["gevent_lag_ms"]),
                          float(r["light_lag_ms"]), int(r["viewers"])) for r in csv.DictReader(f)]


class SelfSampler:
    """Runs in a generator process under gevent: `run()` is a greenlet body that calls `emit(sample)`
    once a second. `light_lag` returns (and resets) the light loop's worst pass in ms; `children`
    gives (pid, viewers, loop lag ms) of light-viewer child processes, each sampled and judged as a
    generator process of its own."""

    def __init__(self, emit: Callable[[GenSample], None], light_lag: Callable[[], float] = lambda: 0.0,
                 viewers: Callable[[], int] = lambda: 0, throttle: float = 0.0,
                 children: Callable[[], list[tuple[str, int, float]]] = lambda: []) -> None:
        import socket

        self.emit, self.light_lag, self.viewers, self.children = emit, light_lag, viewers, children
        self.host = socket.gethostname()
        self.process = f"{self.host}:{os.getpid()}"
        self.gevent_lag_ms = 0.0
        self.throttle = throttle

    def _lag_probe(self) -> None:
        import gevent

        while True:
            t0 = time.perf_counter()
            gevent.sleep(0.05)
            late = (time.perf_counter() - t0 - 0.05) * 1000
            if late > self.gevent_lag_ms:
                self.gevent_lag_ms = late

    def _burn(self) -> None:
        """Forced saturation (tests, and to see what a saturated report looks like): hold the CPU and
        the gevent loop for `throttle` of every half second."""
        import gevent

        while True:
            end = time.perf_counter() + 0.5 * self.throttle
            while time.perf_counter() < end:
                pass
            gevent.sleep(0.5 * (1 - self.throttle))

    def run(self) -> None:
        import gevent
        import psutil

        proc = psutil.Process()
        proc.cpu_percent(None)
        gevent.spawn(self._lag_probe)
        if self.throttle > 0:
            gevent.spawn(self._burn)
        kids: dict[str, Any] = {}
        while True:
            gevent.sleep(1.0)
            lag, self.gevent_lag_ms = self.gevent_lag_ms, 0.0
            now = int(time.time() * 1000)
            children = self.children()
            self.emit(GenSample(self.process, now, round(proc.cpu_percent(None), 1),
                                round(lag, 1), round(self.light_lag(), 1), 0 if children else self.viewers()))
            for pid, viewers, light_lag in children:  # a light-viewer child: a generator process of its own
                try:
                    if pid not in kids:
                        kids[pid] = psutil.Process(int(pid))
                        kids[pid].cpu_percent(None)
                        continue
                    cpu = kids[pid].cpu_percent(None)
                except psutil.Error:
                    continue
                self.emit(GenSample(f"{self.host}:{pid}", now, round(cpu, 1), 0.0, round(light_lag, 1), viewers))
