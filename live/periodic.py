"""A background loop that runs one step every period and always stops when asked.

Stopping uses a flag as well as a cancel. On Python 3.11 a cancel that lands inside a redis-py call
can be swallowed (redis-py wraps socket I/O in `asyncio.wait_for`, CPython gh-86296); a loop that
relied on CancelledError alone would then run on forever and hang the node's shutdown. `stop()`
also waits a bounded time, so one stuck step cannot hold up the rest."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

Step = Callable[[], Awaitable[object]]


class Periodic:
    def __init__(self, step: Step, period_s: float | Callable[[], float], *, name: str,
                 log: logging.Logger, first_delay: bool = False) -> None:
        self._step = step
        self._period = period_s
        self._name = name
        self._log = log
        self._first_delay = first_delay
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            self._log.warning("%s did not stop within %.0f s; left behind", self._name, timeout_s)

    def _delay(self) -> float:
        return self._period() if callable(self._period) else self._period

    async def _run(self) -> None:
        if self._first_delay:
            await asyncio.sleep(self._delay())
        while not self._stopping:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis away for a moment: the next round tries again
                self._log.warning("%s step failed", self._name, exc_info=True)
            if self._stopping:
                return
            await asyncio.sleep(self._delay())
