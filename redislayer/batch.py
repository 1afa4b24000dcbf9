"""Read batching: plain commands issued in one event-loop iteration travel in one pipeline.

A viewer's join reads a dozen small things (the broadcast, its sales and levels, the poll, chat
state, the giveaway...), each part with its own commands. One command is one pool checkout, one
write, one read: under a join burst those checkouts queued on the 64-connection pool, the pool's
waiters cost more CPU than Redis did, and joins answered BUSY. Inside `batched()` the client's
commands are not sent one by one: each gets a future, and the first command of an iteration
schedules a flush (loop.call_soon) that sends everything queued so far as one non-transactional
pipeline (chunks of `MAX_BATCH`), so a whole snapshot, and the snapshots of every join that
runs in the same iteration, are one round trip on one connection.

Only what runs inside `batched()` (a context variable, so tasks started there inherit it) is
batched: the hot command paths keep their own ways (scripts: redislayer.pipeline). Blocking and
transaction commands are never batched. Errors stay per command (a Redis error reply fails only
its own caller); a lost connection fails the batch's callers the way it would have failed each
of them (the pipeline retries on connection errors like a command does). A store's own
non-transactional pipeline (`redis.pipeline(transaction=False)`) joins the batch too
(`BatchedPipeline`); transactions, WATCH and pipelines with scripts keep their own connection."""
from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from redislayer.futures import fail, settle, spawn

MAX_BATCH = 256

_ON: contextvars.ContextVar[bool] = contextvars.ContextVar("redislayer_batched", default=False)

# commands that block a connection or need one to themselves: never in a shared pipeline
_NEVER = frozenset({
    "BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF",
    "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR",
    "SELECT", "AUTH", "HELLO", "CLIENT", "SHUTDOWN", "DEBUG", "SCRIPT", "FUNCTION"})


@contextmanager
def batched() -> Iterator[None]:
    """Commands of this context (and of tasks started in it) are batched per loop iteration."""
    token = _ON.set(True)
    try:
        yield
    finally:
        _ON.reset(token)


def active() -> bool:
    return _ON.get()


def batchable(args: tuple[Any, ...]) -> bool:
    if not args:
        return False
    name = args[0]
    name = (name.decode() if isinstance(name, bytes) else str(name)).upper()
    if name in _NEVER:
        return False
    if name in ("XREAD", "XREADGROUP"):
        return not any(str(a).upper() == "BLOCK" for a in args[1:] if isinstance(a, (str, bytes)))
    return True


class Batcher:
    """The per-iteration queue of one client. `client.pipeline(transaction=False)` carries a batch."""

    def __init__(self, client: Any, timer: Callable[[str, float], None] | None = None,
                 max_batch: int = MAX_BATCH) -> None:
        self.client = client
        self.timer = timer
        self.max_batch = max_batch
        self._queue: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # round trips sent
        self.commands = 0

    def add(self, args: tuple[Any, ...], options: dict[str, Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append((args, options, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush, context=contextvars.Context())  # the flush itself is not batched
        return fut

    def _flush(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        for i in range(0, len(queue), self.max_batch):
            spawn(self._tasks, self._run(queue[i:i + self.max_batch]))

    async def _run(self, batch: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]]) -> None:
        live = [c for c in batch if not c[2].done()]  # callers that gave up (timeouts) are not sent
        if not live:
            return
        self.batches += 1
        self.commands += len(live)
        pipe = Pipeline(self.client.connection_pool, self.client.response_callbacks, False, None)
        for args, options, _fut in live:
            pipe.execute_command(*args, **options)
        start = time.perf_counter()
        try:
            results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # noqa: BLE001 - every caller gets what its own command would have raised
            fail((fut for *_, fut in live), exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        finally:
            if self.timer is not None:
                self.timer("BATCH", time.perf_counter() - start)
        settle((fut for *_, fut in live), results)


class BatchedPipeline(Pipeline):
    """A non-transactional pipeline made inside `batched()`: `execute()` hands its commands to the
    client's Batcher instead of taking a connection of its own, with Pipeline's answers (a list in
    order; the first Redis error raised when `raise_on_error`, else returned in place)."""

    def __init__(self, batcher: Batcher, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batcher = batcher

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = self.command_stack
        if self.watching or self.scripts or self.is_transaction or self.explicit_transaction:
            return await super().execute(raise_on_error)
        if not stack:
            return []
        futs = [self._batcher.add(tuple(args), dict(options)) for args, options in stack]
        try:
            results = list(await asyncio.gather(*futs, return_exceptions=True))
        finally:
            await self.reset()
        for r in results:  # a lost connection / timeout fails the whole pipeline, as it would have
            if isinstance(r, BaseException) and not isinstance(r, ResponseError):
                raise r
        if raise_on_error:
            for r in results:
                if isinstance(r, ResponseError):
                    raise r
        return results
