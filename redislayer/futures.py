"""The callers' side of a batch: one future per caller, answered from the batch's replies. Both
batchers (redislayer.pipeline for scripts, redislayer.batch for plain reads) answer this way."""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any


def settle(futures: Iterable[asyncio.Future[Any]], replies: Iterable[Any]) -> None:
    """Each caller gets its own reply; an error reply fails only its own caller. A caller that gave
    up meanwhile (its future is done: a timeout cancelled it) is left alone."""
    for fut, reply in zip(futures, replies):
        if fut.done():
            continue
        if isinstance(reply, BaseException):
            fut.set_exception(reply)
        else:
            fut.set_result(reply)


def fail(futures: Iterable[asyncio.Future[Any]], exc: BaseException) -> None:
    """Every caller still waiting hears what went wrong with the whole batch."""
    for fut in futures:
        if not fut.done():
            fut.set_exception(exc)


def spawn(tasks: set[asyncio.Task[Any]], coro: Coroutine[Any, Any, Any]) -> None:
    """Run `coro` as a task kept in `tasks` until it ends (so it is not garbage-collected midway and
    its owner can wait for or cancel what is in flight)."""
    task = asyncio.ensure_future(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
