"""Raw samples and generator rows of one Locust process, shipped to the master and written there."""
from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.runners import WorkerRunner

from loadtest import generator
from loadtest.locust_settings import OUT
from loadtest.samples import Sample, SampleWriter

MESSAGE = "hawker_rows"
RAW_TICKS_PER_S = 200  # raw tick samples kept per process and second (Locust's stats get every sampled tick)


class _Rows:
    """Raw samples and generator seconds of this process, shipped to the master every half second
    (a Locust custom message), so a distributed run's master has every worker's rows."""

    def __init__(self) -> None:
        self.samples: list[list[Any]] = []
        self.gen: list[list[Any]] = []
        self.raw_ticks = 0
        self.prev_ticks = 1
        self.raw_tick_second = 0
        self.env: Any = None
        self.started = False

    def add(self, s: Sample) -> None:
        if s.kind == "tick_latency":
            # keep about RAW_TICKS_PER_S a second, drawn at random over the whole second (keeping the
            # first ones would favour the sockets a fan-out reaches first)
            sec = int(time.time())
            if sec != self.raw_tick_second:
                self.raw_tick_second, self.prev_ticks, self.raw_ticks = sec, max(self.raw_ticks, 1), 0
            self.raw_ticks += 1
            if random.random() > RAW_TICKS_PER_S / self.prev_ticks:
                return
        self.samples.append([s.kind, s.at_ms, round(s.value_ms, 3), s.code, s.user])

    def add_gen(self, g: generator.GenSample) -> None:
        self.gen.append([g.process, g.at_ms, g.cpu_pct, g.gevent_lag_ms, g.light_lag_ms, g.viewers])

    def ship(self) -> None:
        if not (self.samples or self.gen) or self.env is None or self.env.runner is None:
            return
        data = {"s": self.samples, "g": self.gen}
        self.samples, self.gen = [], []
        self.env.runner.send_message(MESSAGE, data)

    def loop(self) -> None:
        while True:
            gevent.sleep(0.5)
            self.ship()


ROWS = _Rows()
_writer: SampleWriter | None = None


def _receive(environment: Any, msg: Any, **_kw: Any) -> None:
    """Master (or a lone local process): write what a generator process shipped."""
    global _writer
    if _writer is None:
        _writer = SampleWriter(OUT)
    for kind, at, value, code, user in msg.data.get("s", ()):
        _writer.add(Sample(kind, int(at), float(value), code, user))
    _writer.flush()
    if msg.data.get("g"):
        generator.append_rows(Path(OUT) / "generator.csv", msg.data["g"])


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    ROWS.env = environment
    if not isinstance(environment.runner, WorkerRunner) and environment.runner is not None:
        environment.runner.register_message(MESSAGE, _receive)


def record(s: Sample) -> None:
    ROWS.add(s)


@events.test_stopping.add_listener
def _ship_on_stop(**_kw: Any) -> None:
    ROWS.ship()


@events.quitting.add_listener
def _ship_on_quit(**_kw: Any) -> None:
    ROWS.ship()
    if _writer is not None:
        _writer.flush()
