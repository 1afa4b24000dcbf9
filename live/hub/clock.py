"""The node's view of the server clock: Redis `TIME`, the same clock the inventory's Lua scripts use.

A node samples Redis a few times, keeps the sample with the smallest round trip and from then on
answers `now_ms()` locally (monotonic clock + offset), so every node and every Lua script agree on
"now" to within a millisecond or two without a Redis call per question."""
from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis

from live.periodic import Periodic

log = logging.getLogger("hawker.hub.clock")


def _mono_ms() -> float:
    return time.monotonic() * 1000.0


class ServerClock:
    def __init__(self, redis: aioredis.Redis, *, samples: int = 5, resync_s: float = 30.0) -> None:
        self._redis = redis
        self._samples = samples
        self._resync_s = resync_s
        self._offset: float | None = None
        self.rtt_ms: float = 0.0
        self._loop = Periodic(self.sync, lambda: self._resync_s if self._offset is not None else 1.0,
                              name="clock-resync", log=log, first_delay=True)

    async def sync(self) -> None:
        """Best of `samples` round trips: the offset from the fastest one has the smallest error."""
        best: tuple[float, float] | None = None
        for _ in range(self._samples):
            t0 = _mono_ms()
            sec, usec = await self._redis.time()
            t1 = _mono_ms()
            server = sec * 1000.0 + usec / 1000.0
            rtt = t1 - t0
            if best is None or rtt < best[0]:
                best = (rtt, server - (t0 + t1) / 2.0)
        assert best is not None
        self.rtt_ms, self._offset = best

    def now_ms(self) -> int:
        """Server time in integer milliseconds. Falls back to the local wall clock before the first sync."""
        if self._offset is None:
            return int(time.time() * 1000)
        return int(_mono_ms() + self._offset)

    def mono_at(self, server_ms: int) -> float:
        """The local `loop.time()`-compatible monotonic instant (seconds) of a server timestamp."""
        return time.monotonic() + (server_ms - self.now_ms()) / 1000.0

    async def start(self) -> None:
        try:
            await self.sync()
        except Exception:  # noqa: BLE001 - Redis may come up later; the resync loop retries
            log.warning("clock sync with Redis failed; retrying in the background")
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

