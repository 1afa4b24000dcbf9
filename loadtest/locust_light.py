"""One Locust process's light-viewer child (its reports become Locust events) and its once-per-process helpers."""
from __future__ import annotations

import gc
from typing import Any

import gevent
import gevent.event
import gevent.lock
from locust import events

from loadtest import generator
from loadtest.client import now_ms
from loadtest.lightproc import LightProcess
from loadtest.locust_rows import ROWS, record
from loadtest.locust_settings import THROTTLE, TICK_SAMPLE
from loadtest.samples import Sample

GC_THRESHOLD_0 = 20_000


@events.spawning_complete.add_listener
def _freeze_gc(**_kw: Any) -> None:
    """Every user of this process exists now: take them out of the collector's sight. A full
    collection over a few hundred full clients and their greenlets stopped the gevent loop for up
    to 0.7 s, which the saturation rule reads as generator lag."""
    gc.collect()
    gc.freeze()


class _Light:
    """One light-viewer pool per generator process, in a child process of its own (started lazily:
    after Locust forks its workers; loadtest/lightproc.py says why not a thread), and the gevent
    side that turns its reports into Locust request events and raw samples."""

    def __init__(self) -> None:
        self.pool: LightProcess | None = None
        self.viewers = 0
        self.wake = gevent.event.Event()
        self.lock = gevent.lock.Semaphore()

    def get(self, host: str, env: Any) -> LightProcess:
        with self.lock:  # starting the child yields to other greenlets: the users spawned beside us wait
            if self.pool is None:
                import gevent.subprocess

                pool = LightProcess(host, TICK_SAMPLE, popen=gevent.subprocess.Popen)
                self.env = env
                pool.start(self.wake.set, gevent.spawn, gevent.sleep)
                self.pool = pool
                gevent.spawn(self._drain)
                start_process_helpers(env, pool)
        return self.pool

    def _drain(self) -> None:
        fire = self.env.events.request.fire
        pool = self.pool
        assert pool is not None
        while True:
            self.wake.wait(0.5)
            self.wake.clear()
            n = 0
            while pool.outbox:
                item = pool.outbox.popleft()
                fire(request_type=item.request_type, name=item.name, response_time=item.ms, response_length=0,
                     exception=None if item.code in ("OK", "PARTIAL") or item.request_type == "TICK"
                     else RuntimeError(item.code), context={})
                if item.sample:
                    record(Sample(item.sample, now_ms(), item.ms, item.code, item.user))
                n += 1
                if n % 500 == 0:
                    gevent.sleep(0)

    def child(self) -> list[tuple[str, int, float]]:
        """(pid, viewers, loop lag ms) of the child pool, for the self-sampler."""
        if self.pool is None:
            return []
        return [(str(self.pool.pid), self.viewers, self.pool.take_busy_max_ms())]


LIGHT = _Light()
_helpers_started = False


def start_process_helpers(env: Any, pool: LightProcess | None) -> None:
    """Once per generator process: the row shipper and the self-sampler."""
    global _helpers_started
    if _helpers_started:
        return
    _helpers_started = True
    gc.set_threshold(GC_THRESHOLD_0, 20, 100)  # fewer, larger young collections (CPython's default: 700)
    ROWS.env = env
    gevent.spawn(ROWS.loop)
    sampler = generator.SelfSampler(ROWS.add_gen, viewers=lambda: LIGHT.viewers, throttle=THROTTLE,
                                    children=LIGHT.child)
    gevent.spawn(sampler.run)
