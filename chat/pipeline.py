"""Auto-pipelining for the chat's Lua scripts: calls made in the same event-loop iteration go to
Redis together, as one write of pre-encoded RESP on one pooled connection.

A busy node has many chat sends in flight at once; one round trip (and one syscall, one parse loop)
for all of them instead of one each is where most of the client-side cost goes. Each call gets a
future; the first call of an iteration schedules the flush with `loop.call_soon`. Batches are cut at
`max_batch` and written on separate connections so Redis works on one while Python parses another.
A NOSCRIPT reply (Redis restarted, SCRIPT FLUSH) loads the script and retries just those calls."""
from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from redis.exceptions import NoScriptError, ResponseError


class LuaScript:
    """A script's source and SHA1."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


def _bulk(x: Any) -> bytes:
    if isinstance(x, bytes):
        b = x
    elif isinstance(x, str):
        b = x.encode()
    else:
        b = repr(x).encode() if isinstance(x, float) else str(x).encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)


def _pack(script: LuaScript, keys: list[str], args: list[Any], use_eval: bool) -> bytes:
    parts = [b"EVAL" if use_eval else b"EVALSHA", script.source if use_eval else script.sha, len(keys), *keys, *args]
    return b"*%d\r\n" % len(parts) + b"".join(_bulk(p) for p in parts)


_Call = tuple[LuaScript, list[str], list[Any], "asyncio.Future[Any]"]


class AutoPipeline:
    def __init__(self, redis: Any, max_batch: int = 64) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self._pool = getattr(redis, "connection_pool", None)
        self._queue: list[_Call] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def call(self, script: LuaScript, keys: list[str], args: list[Any]) -> "asyncio.Future[Any]":
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append((script, keys, args, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        for i in range(0, len(queue), self.max_batch):
            task = asyncio.ensure_future(self._run(queue[i:i + self.max_batch]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Call], use_eval: bool = False) -> list[Any]:
        if self._pool is None:  # e.g. a cluster client: its own pipeline
            pipe = self.redis.pipeline(transaction=False)
            for s, k, a, _ in batch:
                pipe.execute_command("EVAL" if use_eval else "EVALSHA", s.source if use_eval else s.sha, len(k), *k, *a)
            return await pipe.execute(raise_on_error=False)
        conn = await self._pool.get_connection()
        try:
            await conn.send_packed_command(b"".join(_pack(s, k, a, use_eval) for s, k, a, _ in batch),
                                           check_health=False)
            out: list[Any] = []
            for _ in batch:
                try:
                    out.append(await conn.read_response())  # the client's socket_timeout applies
                except ResponseError as exc:
                    out.append(exc)
            return out
        except BaseException:
            await conn.disconnect(nowait=True)  # out of step with its replies: never reuse it
            raise
        finally:
            await self._pool.release(conn)

    async def _run(self, batch: list[_Call]) -> None:
        try:
            results = await self._send(batch)
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:
                retry = [batch[i] for i in missing]
                again = await self._send(retry, use_eval=True)  # EVAL also caches the script
                for i, r in zip(missing, again):
                    results[i] = r
        except BaseException as exc:  # every waiting caller hears of it
            for *_, fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else ConnectionError(str(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        for (*_, fut), res in zip(batch, results):
            if not fut.done():
                if isinstance(res, Exception):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)
