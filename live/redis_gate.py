"""The node's check that its Redis is new enough, made when it first reaches Redis.

A node starts while Redis is down (fan-out and workers retry in the background), so the version
cannot be checked before serving. The gate asks `INFO server` in the background until Redis answers:
  - Redis >= 7.0 (or Valkey): the gate opens; /readyz may answer ready.
  - older: the gate refuses for good. It logs one ERROR naming the version found, /readyz answers
    503 REDIS_TOO_OLD with that message, and `on_refused` runs: `hawker serve`/`hawker demo` use it
    to stop the node and exit with status EXIT_REDIS_TOO_OLD, so a supervisor shows the reason
    instead of a node that silently never delivers a webhook.
The check is made once per process; a later failover to an older server is not detected."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from redislayer.version import RedisTooOld, ServerVersion, require_server

log = logging.getLogger("hawker.redis")

EXIT_REDIS_TOO_OLD = 3


def where(url: str) -> str:
    """'Redis at host:port' for messages: never the password of the URL."""
    try:
        parts = urlsplit(url)
        return f"Redis at {parts.hostname or '?'}:{parts.port or 6379}"
    except ValueError:
        return "Redis"


class RedisGate:
    """States: 'waiting' (Redis not reached yet), 'ok', 'refused' (too old; final)."""

    def __init__(self, redis: Any, url: str, *, retry_s: float = 1.0, max_retry_s: float = 5.0) -> None:
        self._redis = redis
        self.where = where(url)
        self.state = "waiting"
        self.version: ServerVersion | None = None
        self.error: RedisTooOld | None = None
        self.on_refused: Callable[[RedisTooOld], None] | None = None
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> str:
        """One attempt (what /readyz calls while waiting): the state after it. Redis errors other
        than the version propagate (the caller treats them as 'not reachable')."""
        if self.state != "waiting":
            return self.state
        try:
            self.version = await require_server(self._redis, self.where)
        except RedisTooOld as exc:
            self._refuse(exc)
            return self.state
        self.state = "ok"
        log.info("%s is %s", self.where, self.version.describe())
        return self.state

    def _refuse(self, exc: RedisTooOld) -> None:
        if self.state == "refused":
            return
        self.state, self.error, self.version = "refused", exc, exc.found
        log.error("refusing to run: %s", exc)
        if self.on_refused is not None:
            self.on_refused(exc)

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="redis-version-gate")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=5.0)

    async def _run(self) -> None:
        delay = self._retry_s
        while not self._stopping and self.state == "waiting":
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis not there yet: try again
                log.debug("redis version check: %s", type(exc).__name__)
            if self.state != "waiting" or self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(self._max_retry_s, delay * 2)
