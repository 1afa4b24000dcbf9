"""Auto-pipelining: Lua script calls made in the same event-loop iteration travel in one pipeline.

Each call queues (script, keys, args) and gets a future; the first call of an iteration schedules a
flush with loop.call_soon, so everything queued before the loop comes round again is written to
Redis in one round trip and answered in order. Under load (hundreds of concurrent reserves or chat
sends) this turns N round trips and N syscalls into one, which is where the Python path loses most
against Redis itself, and it is why a burst needs only a few connections.

An iteration's calls are cut into pipelines of at most `max_batch` (64), written at once on
separate pooled connections (at most `max_inflight`): Redis runs chunk 2 while Python is already
parsing chunk 1's answers. Measured on 2 cores, 256 callers: one 256-call pipeline per tick gave
~14k reserves/s, chunks of 64 gave ~29k/s.

Failures: a NOSCRIPT answer (server restarted, SCRIPT FLUSH, failover) sends just those calls again
as EVAL (which also caches the script); a lost connection or a socket timeout sends the batch again (twice at most: safe
because callers' scripts are idempotent in effect, e.g. reserve replays by request id); a pool that
has no free connection within its wait raises `PoolTimeout` to every caller of the batch (BUSY).

Redis Cluster (redislayer.client.BoundedCluster): an iteration's calls are grouped by the master
that owns their first key's slot (a script's keys share one slot) and each group is written as one
pipeline on a connection of that master, with the same chunking and retries; a call answered
`MOVED`, `ASK` or `TRYAGAIN` (its slot is migrating: the script did not run) is sent once more on
its own through the cluster client, which follows the redirection, so a migration neither loses
nor doubles a call.

Durability (`replicas_ack` on the client, HAWKER_REDIS_REPLICAS_ACK): a batch with a call that
changes something (a Script not marked `readonly`) ends with `WAIT replicas_ack ack_timeout_ms` on
the same connection; if fewer replicas confirmed, those calls fail with `ReplicaAckTimeout`
(UNAVAILABLE: the change may be lost in a failover, so it is not acknowledged; a retry with the
same request id is safe). Read-only calls of the batch keep their answers.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.crc import key_slot
from redis.exceptions import AskError, MaxConnectionsError, MovedError, NoScriptError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redislayer.client import PoolTimeout, RedisTimer
from redislayer.errors import ReplicaAckTimeout
from redislayer.futures import fail, settle, spawn
from redislayer.shardpubsub import is_cluster

RETRY_DELAYS_S = (0.05, 0.25)  # a batch that lost its connection is sent again after these
REDIRECT_S = 2.0  # how long a call whose slot is migrating is redirected before BUSY


@dataclass(frozen=True)
class Script:
    """A Lua script: its name (for metrics and errors), source and SHA1. `readonly` scripts change
    nothing (no replica ack is waited for them)."""

    name: str
    source: str
    sha: str = field(init=False)
    readonly: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())

    @classmethod
    def from_file(cls, path: Path | str, readonly: bool = False) -> Script:
        """A script kept in a `.lua` file beside its package (named by the file's stem)."""
        p = Path(path)
        return cls(p.stem, p.read_text(encoding="utf-8"), readonly=readonly)


_Call = tuple[Script, list[str], list[Any], "asyncio.Future[Any]"]


def _bulk(x: Any) -> bytes:
    if isinstance(x, bytes):
        b = x
    elif isinstance(x, str):
        b = x.encode()
    else:
        b = str(x).encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)


class AutoPipeline:
    """Queues EVALSHA calls and flushes them once per event-loop iteration.

    `fixed_args` leading arguments of a call that are the same for every call with the same script
    and keys are encoded once and cached with them (inventory passes its stream cap there)."""

    def __init__(self, redis: aioredis.Redis, *, max_batch: int = 64, max_inflight: int = 8,
                 fixed_args: int = 0, timer: RedisTimer | None = None) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self.fixed_args = fixed_args
        self.timer = timer if timer is not None else getattr(redis, "timer", None)
        self.replicas_ack = int(getattr(redis, "replicas_ack", 0) or 0)
        self.ack_timeout_ms = int(getattr(redis, "ack_timeout_ms", 0) or 0)
        self.cluster = is_cluster(redis)
        self._cluster_client: Any = redis  # a RedisCluster when self.cluster
        # fast path: pre-packed RESP on a pooled connection (plain clients, and a cluster's node
        # connections); clients with neither go through redis-py's pipeline
        self._pool = None if self.cluster else getattr(redis, "connection_pool", None)
        self._prefix: dict[tuple[Any, ...], tuple[int, bytes]] = {}
        own = redis.dedicated_pool(max_inflight) if self._pool is not None and hasattr(redis, "dedicated_pool") else None
        if own is not None:  # its own connections: a burst never waits behind other users of the client
            self._pool = own
            self.max_inflight = max(1, max_inflight)
        else:  # the shared pool: pipelines in flight at once, each holding one connection; leave the rest
            pool_cap = getattr(self._pool, "max_connections", None) or max_inflight * 2
            self.max_inflight = max(1, min(max_inflight, pool_cap // 2))
        self._warmed = own is None  # a dedicated pool opens its connections at the first call
        self._inflight: asyncio.Semaphore | None = None
        self._queue: list[_Call] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.flushes = 0  # iterations that sent something
        self.batches = 0  # pipelines (round trips) sent
        self.calls = 0
        self.retries = 0
        self.redirected = 0  # calls answered MOVED/ASK/TRYAGAIN and sent again on their own
        self.ack_failures = 0  # batches whose WAIT saw fewer replicas than asked

    def call(self, script: Script, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """Queue one EVALSHA; the future gets its reply (or the exception of its batch)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append((script, keys, args, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        if not self._warmed:
            self._warmed = True
            spawn(self._tasks, self._warm())
        return fut

    async def _warm(self) -> None:
        """Open the dedicated pool's connections now, long before a burst needs them all at once
        (the first calls are a few joins' reads; a sale's open wants every connection within a
        millisecond). Best effort: a failure leaves them to be opened when needed."""
        pool = self._pool
        assert pool is not None

        async def one() -> None:
            conn = await pool.get_connection()
            await asyncio.sleep(0.05)  # held a moment, so the others open connections of their own
            await pool.release(conn)
        await asyncio.gather(*(one() for _ in range(self.max_inflight)), return_exceptions=True)

    def _flush(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        self.flushes += 1
        for group in (self._by_node(queue) if self.cluster else [queue]):
            for i in range(0, len(group), self.max_batch):
                spawn(self._tasks, self._run(group[i:i + self.max_batch]))

    def _packed(self, script: Script, keys: list[str], args: list[Any], use_eval: bool) -> bytes:
        """Script, keys and the fixed args repeat across calls: their RESP is built once."""
        n = self.fixed_args
        key = (script.name, script.sha, tuple(keys), tuple(args[:n]), use_eval)
        cached = self._prefix.get(key)
        if cached is None:
            head = [b"EVAL", script.source] if use_eval else [b"EVALSHA", script.sha]
            fixed = [*head, len(keys), *keys, *args[:n]]
            cached = (len(fixed), b"".join(_bulk(p) for p in fixed))
            if len(self._prefix) < 10_000:
                self._prefix[key] = cached
        n_fixed, prefix = cached
        rest = args[n:]
        return b"*%d\r\n" % (n_fixed + len(rest)) + prefix + b"".join(_bulk(p) for p in rest)

    def _by_node(self, queue: list[_Call]) -> list[list[_Call]]:
        """A cluster's calls grouped by the master of their slot (one group when the slot map is
        not known yet: _send groups again once it is)."""
        groups: dict[str, list[_Call]] = {}
        for call in queue:
            groups.setdefault(self._node_name(call), []).append(call)
        return list(groups.values())

    def _node(self, call: _Call) -> Any:
        keys = call[1]
        slot = key_slot(keys[0].encode() if isinstance(keys[0], str) else keys[0]) if keys else 0
        return self._cluster_client.nodes_manager.get_node_from_slot(slot)

    def _node_name(self, call: _Call) -> str:
        try:
            return str(self._node(call).name)
        except Exception:  # noqa: BLE001 - slot map not loaded yet
            return "?"

    async def _connection(self, pool: Any = None) -> Any:
        """A pooled connection. A bounded (blocking) pool waits by itself and raises PoolTimeout;
        a plain pool (or a cluster node) at its cap is polled for a while, then gives up the same
        way."""
        pool = pool if pool is not None else self._pool
        assert pool is not None
        if hasattr(pool, "timeout"):  # BlockingConnectionPool
            return await pool.get_connection()
        delay, waited = 0.001, 0.0
        while waited < 2.0:
            try:
                got = pool.acquire_connection() if hasattr(pool, "acquire_connection") else pool.get_connection()
                return await got if asyncio.iscoroutine(got) else got
            except MaxConnectionsError:
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 0.05)
        raise PoolTimeout("no Redis connection free within 2s")

    def _wants_ack(self, batch: list[_Call]) -> bool:
        return self.replicas_ack > 0 and any(not c[0].readonly for c in batch)

    async def _send(self, batch: list[_Call], use_eval: bool = False) -> list[Any]:
        if self.cluster:
            return await self._send_cluster(batch, use_eval)
        if self._pool is None:
            return await self._send_pipeline(batch, use_eval)
        conn = await self._connection()
        try:
            return await self._write_read(conn, batch, use_eval)
        finally:
            await self._pool.release(conn)

    async def _write_read(self, conn: Any, batch: list[_Call], use_eval: bool, asking: bool = False) -> list[Any]:
        """The batch as one write on `conn` (+ WAIT when a call changes something), its replies.
        `asking`: one call, sent after ASKING (a slot being imported by this node)."""
        try:
            packed = [self._packed(s, k, a, use_eval) for s, k, a, _ in batch]
            if asking:
                packed.insert(0, b"*1\r\n$6\r\nASKING\r\n")
            ack = self._wants_ack(batch)
            if ack:
                packed.append(b"*3\r\n$4\r\nWAIT\r\n" + _bulk(self.replicas_ack) + _bulk(self.ack_timeout_ms))
            await conn.send_packed_command(packed)
            if asking:
                await conn.read_response()
            results: list[Any] = []
            for _ in batch:
                try:
                    results.append(await conn.read_response())  # the client's socket_timeout applies
                except ResponseError as exc:  # an error reply: keep reading the others
                    results.append(exc)
            if ack:
                acked = int(await conn.read_response())
                if acked < self.replicas_ack:
                    self.ack_failures += 1
                    err = ReplicaAckTimeout(f"{acked} of {self.replicas_ack} replicas confirmed within "
                                            f"{self.ack_timeout_ms} ms")
                    results = [err if not c[0].readonly and not isinstance(r, Exception) else r
                               for c, r in zip(batch, results)]
            return results
        except BaseException:
            await conn.disconnect(nowait=True)  # out of step with its replies: never reuse it
            raise

    async def _send_cluster(self, batch: list[_Call], use_eval: bool = False) -> list[Any]:
        """One pipeline per master on one of its connections. A call answered MOVED (the slot map
        changed: learnt again), ASK (the slot is migrating and its keys are on the target: sent
        there after ASKING) or TRYAGAIN (the slot is half migrated: sent again shortly) did not
        run, and is sent again on its own, for up to REDIRECT_S (a slot in migration answers a
        multi-key script ASK on its source and TRYAGAIN on its target until its keys have moved);
        past that the caller gets the redirection (BUSY, retry-safe)."""
        await self.redis.initialize()  # a no-op once the slot map is loaded
        groups: dict[str, tuple[Any, list[int]]] = {}
        for i, call in enumerate(batch):
            node = self._node(call)
            groups.setdefault(node.name, (node, []))[1].append(i)
        results: list[Any] = [None] * len(batch)

        async def one(node: Any, idx: list[int]) -> None:
            for i, r in zip(idx, await self._on_node(node, [batch[i] for i in idx], use_eval)):
                results[i] = r

        await asyncio.gather(*(one(node, idx) for node, idx in groups.values()))
        for i, r in enumerate(results):
            if isinstance(r, (MovedError, AskError, TryAgainError)):
                results[i] = await self._redirected(batch[i], r, use_eval)
        return results

    async def _redirected(self, call: _Call, reply: Exception, use_eval: bool) -> Any:
        deadline = asyncio.get_running_loop().time() + REDIRECT_S
        while asyncio.get_running_loop().time() < deadline:
            self.redirected += 1
            asking = False
            if isinstance(reply, MovedError):
                await self._cluster_client.nodes_manager.initialize()
                node = self._node(call)
            elif isinstance(reply, AskError):
                node = self._cluster_client.get_node(host=reply.host, port=reply.port)
                asking = True
                if node is None:
                    await self._cluster_client.nodes_manager.initialize()
                    node = self._cluster_client.get_node(host=reply.host, port=reply.port) or self._node(call)
            elif isinstance(reply, TryAgainError):
                await asyncio.sleep(0.025)
                node = self._node(call)
            else:
                return reply
            reply = (await self._on_node(node, [call], use_eval, asking=asking))[0]
        return reply

    async def _on_node(self, node: Any, calls: list[_Call], use_eval: bool, asking: bool = False) -> list[Any]:
        conn = await self._connection(node)
        try:
            return await self._write_read(conn, calls, use_eval, asking=asking)
        finally:
            node.release(conn)

    async def _send_pipeline(self, batch: list[_Call], use_eval: bool = False) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for script, keys, args, _ in batch:
            if use_eval:
                pipe.execute_command("EVAL", script.source, len(keys), *keys, *args)
            else:
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))

    async def _send_retrying(self, batch: list[_Call]) -> list[Any]:
        """Send; on a lost connection or a socket timeout send the batch again (twice at most).
        A PoolTimeout is not retried: the caller already waited the pool's whole wait."""
        for delay in RETRY_DELAYS_S:
            try:
                return await self._send(batch)
            except PoolTimeout:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError):
                self.retries += 1
                await asyncio.sleep(delay)
        return await self._send(batch)

    async def _run(self, batch: list[_Call]) -> None:
        if self._inflight is None:
            self._inflight = asyncio.Semaphore(self.max_inflight)
        async with self._inflight:
            await self._run_batch(batch)

    def _observe(self, batch: list[_Call], seconds: float) -> None:
        if self.timer is None:
            return
        name = batch[0][0].name
        if any(c[0].name != name for c in batch):
            name = "mixed"
        self.timer(f"script:{name}", seconds)

    async def _run_batch(self, batch: list[_Call]) -> None:
        self.batches += 1
        self.calls += len(batch)
        start = time.perf_counter()
        try:
            results = await self._send_retrying(batch)
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:  # EVAL runs them and caches the script for the next EVALSHA, on our own connections
                again = await self._send([batch[i] for i in missing], use_eval=True)
                for i, r in zip(missing, again):
                    results[i] = r
        except BaseException as exc:  # connection lost, pool exhausted, cancelled: every caller hears
            fail((fut for *_, fut in batch), exc if isinstance(exc, Exception) else ConnectionError(str(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._observe(batch, time.perf_counter() - start)
        settle((fut for *_, fut in batch), results)
