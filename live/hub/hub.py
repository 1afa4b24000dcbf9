"""The Hub: owns the Socket.IO handlers (connect, disconnect, every event) of one node.

Connect -> authenticate -> join the broadcast in the fan-out engine -> one `snapshot` event.
Every other event goes through the Registry's dispatcher. The hub keeps no state that matters
beyond its sockets: everything else is in Redis, so a reconnect to any node resumes."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from domain import Code
from live.fanout import Fanout, FanoutServer
from live.hub import metrics
from live.hub.clock import ServerClock
from live.hub.connect import Refused, authenticate
from live.hub.registry import Caller, Handler, Registry, SnapshotPart
from redislayer import batched, overload_code
from shop.broadcasts import BroadcastStore

log = logging.getLogger("hawker.hub")

Hook = Callable[[Caller], Awaitable[None]]
JOIN_QUEUE_S = 5.0  # how long a connect waits for a join slot before it is refused BUSY
JOIN_RETRY_AFTER_MS = 500  # retry_after of a connect refused for too many joins in progress


class Hub:
    def __init__(self, *, sio: FanoutServer, redis: aioredis.Redis, fanout: Fanout, secret: str,
                 registry: Registry | None = None, node_id: str | None = None, max_joining: int = 0) -> None:
        self.sio = sio
        self.redis = redis
        self.fanout = fanout
        self.secret = secret
        self.registry = registry or Registry()
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self.clock = ServerClock(redis)
        self.broadcasts = BroadcastStore(redis)
        self._callers: dict[str, Caller] = {}
        self._join_hooks: list[Hook] = []
        self._leave_hooks: list[Hook] = []
        self._end_hooks: list[Callable[[str], Awaitable[None]]] = []
        self._tasks: set[asyncio.Task] = set()
        self.max_joining = max_joining  # joins admitted and not yet sent their snapshot, at most (0: no bound)
        self.join_queue_s = JOIN_QUEUE_S
        self.joining = 0  # joins admitted or waiting for admission, not yet sent their snapshot
        self._slots: asyncio.Semaphore | None = None
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on("*", self._on_event)
        sio.charge = self.registry.charge  # refused frames count toward the flood limit

    # ---- what other parts use ------------------------------------------------------------------

    def command(self, event: str, **kw: Any) -> Callable[[Handler], Handler]:
        """See Registry.command."""
        return self.registry.command(event, **kw)

    def snapshot_part(self, name: str, *, shared: bool = False) -> Callable[[SnapshotPart], SnapshotPart]:
        """See Registry.snapshot_part."""
        return self.registry.snapshot_part(name, shared=shared)

    async def shared(self, key: tuple[Any, ...], fetch: Callable[[], Awaitable[Any]]) -> Any:
        """A snapshot value the same for every join of a broadcast: one fetch for a burst of joins,
        reused briefly (see Registry.shared; `key[1]` must be the broadcast)."""
        return await self.registry.shared(key, fetch)

    def on_join(self, fn: Hook) -> Hook:
        """Called after a socket joined (before its snapshot is built)."""
        self._join_hooks.append(fn)
        return fn

    def on_leave(self, fn: Hook) -> Hook:
        """Called when a joined socket disconnects (clean up per-socket state, e.g. media sessions)."""
        self._leave_hooks.append(fn)
        return fn

    def on_broadcast_end(self, fn: Callable[[str], Awaitable[None]]) -> None:
        """Called once when a broadcast ends (close its polls and sales...)."""
        self._end_hooks.append(fn)

    async def run_end_hooks(self, broadcast: str) -> None:
        for fn in self._end_hooks:
            try:
                await fn(broadcast)
            except Exception:  # noqa: BLE001 - logged; one failing end hook must not keep the others from closing their part
                log.exception("broadcast end hook failed")

    def caller(self, sid: str) -> Caller | None:
        return self._callers.get(sid)

    def callers(self, broadcast: str | None = None) -> list[Caller]:
        return [c for c in self._callers.values() if broadcast is None or c.broadcast == broadcast]

    async def send(self, sid: str, event: str, data: Any) -> None:
        """A private event to one socket of this node."""
        await self.sio.emit(event, data, to=sid)

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        """A fire-and-forget task that is kept referenced and whose failure is logged."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("hub task failed", exc_info=task.exception())

    async def build_snapshot(self, caller: Caller) -> dict[str, Any]:
        parts = await self.registry.snapshot(caller)
        return {
            "broadcast_id": caller.broadcast,
            "you": {"user": caller.user, "name": caller.name, "role": caller.role},
            **parts,
            "viewers": self.fanout.viewer_count(caller.broadcast),
            "node": self.node_id,  # which hub node answered (debugging, multi-worker tests)
            "server_time": self.clock.now_ms(),
        }

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.clock.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.clock.stop()

    async def disconnect_all(self) -> None:
        """Graceful shutdown: close our sockets so clients reconnect to another node at once."""
        for sid in list(self._callers):
            try:
                await self.sio.disconnect(sid)
            except Exception:  # noqa: BLE001 - a socket already gone must not keep the others from being closed
                log.debug("disconnect %s failed", sid, exc_info=True)

    # ---- socket.io handlers --------------------------------------------------------------------

    async def _on_connect(self, sid: str, environ: dict, auth: Any = None) -> bool:
        try:
            ident = authenticate(self.secret, environ, auth)
            try:
                with batched():  # a burst of connects: one round trip per loop iteration
                    found = await self.broadcasts.exists(ident.broadcast)
            except Exception as exc:  # noqa: BLE001 - Redis slow or down: refuse with a reason, the client retries
                over = overload_code(exc)
                if over is None:
                    log.exception("connect: broadcast lookup failed")
                    raise Refused(Code.INTERNAL, "internal error") from None
                log.warning("connect: broadcast lookup failed: %s", type(exc).__name__)
                metrics.OVERLOAD_ANSWERS.labels(over.code, "connect").inc()
                raise Refused(over.code, over.message) from None
            if not found:
                raise Refused(Code.BROADCAST_NOT_FOUND, f"no broadcast {ident.broadcast!r}")
            await self._admit()
        except Refused as exc:
            metrics.HUB_CONNECTS.labels(exc.code).inc()
            raise exc.refusal() from None
        c = ident.claims
        caller = Caller(sid=sid, user=c.sub, name=c.name, role=c.role, broadcast=ident.broadcast, exp=c.exp)
        try:
            self._callers[sid] = caller
            await self.fanout.join(sid, caller.broadcast, staff=caller.is_staff, user=caller.user)
        except BaseException:
            self._joined(None)
            raise
        metrics.HUB_CONNECTS.labels("OK").inc()
        # The CONNECT packet goes out when this handler returns; the snapshot follows it.
        task = self.spawn(self._welcome(caller))
        task.add_done_callback(self._joined)
        return True

    async def _admit(self) -> None:
        """Join admission: at most `max_joining` joins between admission and their snapshot. A
        connect past it waits (FIFO) up to `join_queue_s` for a slot: waiting costs an open socket,
        where refusing costs a whole new handshake later; one that waited in vain is refused BUSY
        with retry_after. Without a bound, an overrun made every join late, late joins timed out
        and came back, and the node never caught up."""
        self.joining += 1
        if not self.max_joining:
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_joining)
        try:
            await asyncio.wait_for(self._slots.acquire(), self.join_queue_s)
        except TimeoutError:
            self.joining -= 1
            metrics.OVERLOAD_ANSWERS.labels("BUSY", "connect").inc()
            raise Refused(Code.BUSY, "too many joins in progress; retry", retry_after=JOIN_RETRY_AFTER_MS) from None

    def _joined(self, _task: asyncio.Task | None) -> None:
        self.joining -= 1
        if self._slots is not None:
            self._slots.release()

    async def _welcome(self, caller: Caller) -> None:
        start = time.perf_counter()
        for hook in self._join_hooks:
            try:
                with batched():
                    await hook(caller)
            except Exception as exc:  # noqa: BLE001 - a hook must not stop the snapshot
                if overload_code(exc) is None:
                    log.exception("join hook failed")
                else:
                    log.warning("join hook failed: %s", type(exc).__name__)
        await asyncio.sleep(0)
        snap = await self.build_snapshot(caller)
        if caller.sid in self._callers:
            await self.send(caller.sid, "snapshot", snap)
            metrics.JOIN_SECONDS.labels("partial" if snap.get("partial") else "whole").observe(
                time.perf_counter() - start)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        caller = self._callers.pop(sid, None)
        self.registry.forget(sid)
        if caller is None:
            return
        try:
            await self.fanout.leave(sid)
        except Exception:  # noqa: BLE001 - logged; the leave hooks below must still free the socket's state
            log.exception("fanout leave failed")
        for hook in self._leave_hooks:
            try:
                with batched():  # a wave of disconnects (a node restart, a retry storm): one round trip per iteration
                    await hook(caller)
            except Exception:  # noqa: BLE001 - logged; one failing leave hook must not skip the others' cleanup
                log.exception("leave hook failed")

    async def _on_event(self, event: Any, sid: str, *args: Any) -> dict[str, Any]:
        return await self.registry.dispatch(self._callers.get(sid), event, args)
