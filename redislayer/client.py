"""The process's Redis client: one blocking pool of fixed size, timeouts, bounded retries, timing.

redis-py's default asyncio pool raises `MaxConnectionsError: Too many connections` the moment every
connection is busy, which under a flash-sale burst turned hundreds of buyers' answers into
`INTERNAL`. The blocking pool makes a caller wait for a connection to come back instead (bounded
by `wait_s`), and the auto-pipeline (redislayer.pipeline) keeps the number needed small.

Long blocking readers (pub/sub, XREAD BLOCK) take a connection for as long as they block: give
them their own client (`connect(..., max_connections=...)` once more) rather than the hot-path pool
when they are many; one pub/sub per process is fine inside it."""
from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redislayer import batch
from redislayer.batch import BatchedPipeline, Batcher

RETRIES = 3

# fn(operation, seconds): how long one Redis round trip took (a command, or a pipeline of scripts).
RedisTimer = Callable[[str, float], None]


class PoolTimeout(RedisTimeoutError):
    """No pooled connection came free within the pool's wait: the process has more Redis work in
    flight than its connections carry. A Redis TimeoutError, so it reads as `BUSY`."""


class BoundedPool(BlockingConnectionPool):
    """A blocking pool whose give-up is a `PoolTimeout`, not a ConnectionError (which would read as
    "Redis is down")."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)
        except RedisConnectionError as exc:
            if isinstance(exc.__cause__, TimeoutError) and str(exc) == "No connection available.":
                raise PoolTimeout(f"no Redis connection free within {self.timeout}s "
                                  f"({self.max_connections} in use)") from None
            raise


class BoundedSentinelPool(SentinelConnectionPool, BoundedPool):
    """The bounded blocking pool, its connections going to whichever server the sentinels name
    master now (asked again after a connection error or a READONLY answer)."""


class TimedRedis(aioredis.Redis):
    """A client that reports each command's round trip to `timer` (set after construction).

    `replicas_ack` / `ack_timeout_ms`: the auto-pipeline (redislayer.pipeline) ends every batch
    that changes something with `WAIT replicas_ack ack_timeout_ms` (0: off)."""

    timer: RedisTimer | None = None
    replicas_ack: int = 0
    ack_timeout_ms: int = 0
    _batcher: Batcher | None = None
    _own_pools: list[BoundedPool] | None = None

    def dedicated_pool(self, size: int) -> BoundedPool | None:
        """A pool of `size` connections to the same server for ONE hot-path user (an auto-pipeline),
        closed with this client; None when the client's pool cannot be copied (sentinel: the shared
        pool follows failovers). Why: at a sale's open the buyers' reserves waited behind hundreds
        of plain commands (payments, chat) for a connection of the shared pool, and the pool's
        lazily opened connections each cost a connect and handshake in the middle of the burst.
        No idle health check either: a PING before the first batch after 30 quiet seconds was one
        more round trip at the open; a dead connection fails the write or read and the batch is
        sent again (redislayer.pipeline)."""
        pool = self.connection_pool
        if type(pool) is not BoundedPool:
            return None
        kwargs = {**pool.connection_kwargs, "health_check_interval": 0}
        own = BoundedPool(connection_class=pool.connection_class, max_connections=size, timeout=pool.timeout, **kwargs)
        if self._own_pools is None:
            self._own_pools = []
        self._own_pools.append(own)
        return own

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for pool in self._own_pools or ():
            await pool.disconnect()

    def _batch(self) -> Batcher:
        if self._batcher is None:
            self._batcher = Batcher(self, self.timer)
        return self._batcher

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        """Inside redislayer.batched(), a non-transactional pipeline joins the iteration's batch."""
        if not transaction and shard_hint is None and batch.active():
            return BatchedPipeline(self._batch(), self.connection_pool, self.response_callbacks, False, None)
        return super().pipeline(transaction, shard_hint)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if batch.active() and batch.batchable(args):  # inside redislayer.batched(): one pipeline per iteration
            return await self._batch().add(args, options)
        timer = self.timer
        if timer is None or _blocking(args):  # a blocking read's time is its wait, not a round trip
            return await super().execute_command(*args, **options)
        start = time.perf_counter()
        try:
            return await super().execute_command(*args, **options)
        finally:
            timer(_op(args), time.perf_counter() - start)


def _op(args: tuple[Any, ...]) -> str:
    """A command's name as the Redis timer labels it."""
    name = args[0] if args else "?"
    return name.decode() if isinstance(name, bytes) else str(name).upper()


def _blocking(args: tuple[Any, ...]) -> bool:
    """XREAD/XREADGROUP ... BLOCK ms, BLPOP and the like: they wait for data by design."""
    name = _op(args).upper()
    if name.startswith("XREAD"):
        for a in args[1:]:
            word = a.decode() if isinstance(a, bytes) else a
            if isinstance(word, str) and word.upper() in ("BLOCK", "STREAMS"):
                return word.upper() == "BLOCK"
        return False
    return name in ("BLPOP", "BRPOP", "BLMOVE", "BZPOPMIN", "BZPOPMAX", "BLMPOP", "BZMPOP", "WAIT")


_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("redislayer_inside_gate", default=False)


class BoundedCluster(RedisCluster):
    """redis-py's asyncio RedisCluster, bounded like the standalone pool.

    redis-py's cluster node pools raise MaxConnectionsError the moment they are full (there is no
    blocking cluster pool). Here at most `max_commands` commands and pipelines run at once (a gate
    taken before anything is sent); a caller that finds the gate full waits up to `wait_s`, then
    gets `PoolTimeout` (BUSY). The node pools are sized above the gate (plus room for the
    auto-pipelines' and pub/sub's own node connections), so a command past the gate always finds
    a connection. Timed like TimedRedis."""

    timer: RedisTimer | None = None
    wait_s: float = 2.0
    max_commands: int = 64
    replicas_ack: int = 0
    ack_timeout_ms: int = 0
    _gate: asyncio.Semaphore | None = None

    async def _through_gate(self, fn: Callable[[], Any]) -> Any:
        if _INSIDE.get():  # a redirection followed inside a pipeline: already counted
            return await fn()
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.max_commands)
        try:
            await asyncio.wait_for(self._gate.acquire(), self.wait_s)
        except TimeoutError:
            raise PoolTimeout(f"no Redis connection free within {self.wait_s}s "
                              f"({self.max_commands} commands in flight)") from None
        token = _INSIDE.set(True)
        try:
            return await fn()
        finally:
            _INSIDE.reset(token)
            self._gate.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await self._through_gate(lambda: super(BoundedCluster, self).execute_command(*args, **kwargs))
        finally:
            if self.timer is not None and args and not _blocking(args):
                self.timer(_op(args), time.perf_counter() - start)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        async def gated(*args: Any, **kwargs: Any) -> Any:
            return await self._through_gate(lambda: execute(*args, **kwargs))

        pipe.execute = gated  # type: ignore[method-assign]  # every pipeline goes through the gate too
        return pipe


MODES = ("standalone", "cluster", "sentinel")


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    """`redis+sentinel://[:password@]host:port[,host:port...]/<master name>[/<db>]` ->
    (sentinels, master name, db, password). The password is the data servers' (not the sentinels')."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis+sentinel", "sentinel"):
        raise ValueError("sentinel mode: the URL is redis+sentinel://host:port[,host:port...]/<master name>[/<db>]")
    netloc = parts.netloc
    password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        password = unquote(auth.split(":", 1)[1] if ":" in auth else auth) or None
    sentinels = []
    for hostport in netloc.split(","):
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"sentinel mode: {hostport!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("sentinel mode: the URL names no master (redis+sentinel://host:port/<master name>)")
    db = int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
    return sentinels, unquote(path[0]), db, password


def connect(url: str, *, timeout_s: float = 5.0, max_connections: int = 64, wait_s: float = 2.0,
            timer: RedisTimer | None = None, mode: str = "standalone", replicas_ack: int = 0,
            ack_timeout_ms: int = 100) -> TimedRedis:
    """A client on one bounded pool of `max_connections`.

    A command waits up to `wait_s` for a free connection (then `PoolTimeout`); commands retry 3
    times with backoff (50 ms doubling, capped at 1 s) on connection errors and socket timeouts
    only; a Redis error reply is never retried.

    mode 'cluster': redis-py's asyncio RedisCluster (BoundedCluster), `url` naming any node; it
    routes each command by its key's slot (keys of one lot, sale or broadcast share a hash tag),
    follows MOVED/ASK, `max_connections` per node.
    mode 'sentinel': `url` is redis+sentinel://host:port[,host:port...]/<master name>[/db]; the
    pool connects to the master the sentinels name and asks them again after a failover.
    replicas_ack > 0: auto-pipelined script batches that change something end with
    `WAIT replicas_ack ack_timeout_ms` and fail with ReplicaAckTimeout (UNAVAILABLE) when fewer
    replicas confirmed in time."""
    if replicas_ack < 0 or ack_timeout_ms < 1:
        raise ValueError("replicas_ack must be >= 0 and ack_timeout_ms >= 1")
    if replicas_ack and ack_timeout_ms / 1000 >= timeout_s:
        raise ValueError("the replica ack timeout must be shorter than the Redis socket timeout")
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=RETRIES)
    if mode == "cluster":
        # node pools above the gate: room for the auto-pipelines' batches and the pub/sub connections
        cluster: BoundedCluster = BoundedCluster.from_url(  # type: ignore[assignment]  # from_url is typed as returning RedisCluster, not the subclass
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, max_connections=2 * max_connections + 64,
            retry=retry, retry_on_error=[RedisConnectionError, RedisTimeoutError])
        cluster.timer, cluster.wait_s, cluster.max_commands = timer, wait_s, max_connections
        cluster.replicas_ack, cluster.ack_timeout_ms = replicas_ack, ack_timeout_ms
        return cluster  # type: ignore[return-value]  # a cluster client where the signature says TimedRedis: callers use the commands both have
    if mode == "sentinel":
        sentinels, master, db, password = parse_sentinel_url(url)
        manager = Sentinel(sentinels, socket_timeout=min(timeout_s, 1.0), socket_connect_timeout=min(timeout_s, 1.0))
        client = manager.master_for(
            master, redis_class=TimedRedis, connection_pool_class=BoundedSentinelPool,
            max_connections=max_connections, timeout=wait_s, db=db, password=password,
            socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30,
            retry=retry, retry_on_error=[RedisConnectionError, RedisTimeoutError])
    elif mode == "standalone":
        pool = BoundedPool.from_url(
            url,
            max_connections=max_connections,
            timeout=wait_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
            retry=retry,
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        # redis-py annotates `from_pool` as returning `Redis`, but it builds `cls(...)`: a TimedRedis here
        client = cast(TimedRedis, TimedRedis.from_pool(pool))  # closing the client closes its pool
    else:
        raise ValueError(f"redis mode {mode!r}: use one of {', '.join(MODES)}")
    client.timer = timer
    client.replicas_ack, client.ack_timeout_ms = replicas_ack, ack_timeout_ms
    return cast(TimedRedis, client)  # sentinel's master_for is typed as Any
