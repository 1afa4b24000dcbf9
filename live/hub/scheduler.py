"""Timed hub actions (sale opens, sale and poll closes) that fire once across all nodes.

Due actions live in one Redis sorted set (`hub:timers`, score = due server ms, member
"kind|arg|arg"). Every node arms a local timer for each entry due soon (the node that schedules
arms it at once; the others find it by polling the set every `poll_ms`), and when it fires calls
the kind's handler. The handler makes the change with its own atomic claim (a Lua script that
moves a state only once), so however many nodes fire, exactly one does the action and emits.
Time is the server clock: a handler that finds Redis's TIME still before `due` answers NOT_YET
and is retried a few milliseconds later."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

import redis.asyncio as aioredis

from live.hub.clock import ServerClock
from live.periodic import Periodic

log = logging.getLogger("hawker.hub.timers")

TIMERS_KEY = "hub:timers"
NOT_YET = "NOT_YET"

# handler(args) -> NOT_YET to be retried, anything else when done (won or lost the claim)
TimerHandler = Callable[[list[str]], Awaitable[object]]


class Scheduler:
    def __init__(self, redis: aioredis.Redis, clock: ServerClock, *, poll_ms: int = 250, lookahead_ms: int = 2000) -> None:
        self._r = redis
        self._clock = clock
        self._poll_ms = poll_ms
        self._lookahead_ms = lookahead_ms
        self._handlers: dict[str, TimerHandler] = {}
        self._armed: dict[str, asyncio.TimerHandle] = {}
        self._running: set[asyncio.Task] = set()
        self._loop = Periodic(self.poll, poll_ms / 1000.0, name="timer-poll", log=log)

    def handler(self, kind: str) -> Callable[[TimerHandler], TimerHandler]:
        def deco(fn: TimerHandler) -> TimerHandler:
            self._handlers[kind] = fn
            return fn

        return deco

    async def add(self, due_ms: int, kind: str, *args: str) -> str:
        """Schedule an action; also armed locally at once so it fires on time even if due now."""
        member = "|".join([kind, *args])
        await self._r.zadd(TIMERS_KEY, {member: due_ms})
        self._arm(member, due_ms)
        return member

    async def cancel(self, kind: str, *args: str) -> None:
        member = "|".join([kind, *args])
        await self._r.zrem(TIMERS_KEY, member)
        handle = self._armed.pop(member, None)
        if handle:
            handle.cancel()

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        for h in self._armed.values():
            h.cancel()
        self._armed.clear()
        for t in list(self._running):
            t.cancel()

    def _arm(self, member: str, due_ms: int) -> None:
        if member in self._armed:
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, (due_ms - self._clock.now_ms()) / 1000.0)
        self._armed[member] = loop.call_at(when, self._fire, member)

    def _fire(self, member: str) -> None:
        task = asyncio.create_task(self._run(member))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, member: str) -> None:
        kind, *args = member.split("|")
        fn = self._handlers.get(kind)
        try:
            if fn is None:
                log.error("no handler for timer kind %r", kind)
                result: object = None
            else:
                result = await fn(args)
        except Exception:  # noqa: BLE001 - retried by the next poll while the entry remains
            log.exception("timer %s failed", member)
            await asyncio.sleep(0.1)
            self._armed.pop(member, None)
            return
        if result == NOT_YET:
            loop = asyncio.get_running_loop()
            self._armed[member] = loop.call_later(0.005, self._fire, member)
            return
        self._armed.pop(member, None)
        try:
            await self._r.zrem(TIMERS_KEY, member)
        except Exception:  # noqa: BLE001 - a timer left in Redis fires again; every timed action is once-only
            log.warning("could not remove timer %s", member, exc_info=True)

    async def poll(self) -> None:
        """Arm every timer due within the look-ahead (whichever node set it)."""
        horizon = self._clock.now_ms() + self._lookahead_ms
        # withscores: (member, score) pairs; redis-py's return type does not narrow on the flag
        due = cast("list[tuple[bytes, float]]", await self._r.zrangebyscore(TIMERS_KEY, "-inf", horizon, withscores=True))
        for raw, score in due:
            self._arm(raw.decode(), int(score))
