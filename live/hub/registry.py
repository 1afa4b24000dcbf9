"""The hub's command registry: every client event goes through one dispatcher.

Other parts plug in by name, without touching sockets:

    def register(node: Node) -> None:  # a module of live/sockets/
        hub = node.hub

        @hub.command("chat.send", roles=("host", "moderator", "viewer"))
        async def send(caller: Caller, payload: dict) -> dict:
            if not payload.get("text"):
                raise DomainError(Code.VALIDATION, "text is required", field="text")
            return {"id": "..."}            # ack: {"ok": true, "id": "..."}

        @hub.snapshot_part("chat")
        async def chat_history(caller: Caller) -> list:
            return [...]                     # snapshot["chat"]

The dispatcher guarantees, for every event: the caller is an authenticated socket of one
broadcast (`caller.broadcast`, never anything the client sends); the payload is a JSON object
(missing -> `{}`) no larger than the command's `max_bytes`; the caller's role is allowed
(`FORBIDDEN` otherwise); the socket is within its rate (`FLOOD`, with `retry_after` ms); unknown
events are answered `UNKNOWN_EVENT`; a handler's `DomainError` (domain/errors.py: every refusal
of every part is one) becomes an error ack with its code and details, here and nowhere else; a
command that outlives its deadline, or whose store is slow, is answered `BUSY`, one whose store
cannot be reached `UNAVAILABLE` (both with `retry_after` ms, safe to retry with the same
`request_id`); any other exception is a bug: logged and answered `INTERNAL`. A handler's dict
return value is merged into `{"ok": true, ...}`. Nothing here knows about a specific command.

The join snapshot gathers every part at once; a part that fails is retried until the join deadline,
and if it still fails the snapshot names it in `partial` (with `retry_after`) instead of hiding it.
Its Redis reads travel as one pipeline per loop iteration (redislayer.batched), and parts that are
the same for a whole audience (`shared=True`) are fetched once for all the joins of a burst and
reused for `snapshot_cache_s` (`shared`): a join burst costs a few round trips, not a dozen per join.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from domain import Code, DomainError
from live.auth import ROLES
from live.hub import metrics
from redislayer import batched, overload_code

log = logging.getLogger("hawker.hub")

STAFF = ("host", "moderator")
HOST = ("host",)
EVERYONE = ROLES


@dataclass(frozen=True)
class Caller:
    """The authenticated socket an event came from. `broadcast` is the one it joined."""

    sid: str
    user: str
    name: str
    role: str
    broadcast: str
    exp: int = 0  # the token's expiry (unix s); 0 = never

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


def refusal_ack(err: DomainError) -> dict[str, Any]:
    """THE translation of a refusal to a Socket.IO ack: `{"ok": false, "error": {code, message, **details}}`,
    `retry_after` (ms) from domain's one table for BUSY / UNAVAILABLE."""
    return {"ok": False, "error": err.body()}


def error_ack(code: Code, message: str = "", **details: Any) -> dict[str, Any]:
    """A refusal the dispatcher answers itself (no handler ran), in the same shape."""
    return refusal_ack(DomainError(code, message, **details))


Handler = Callable[[Caller, dict], Awaitable[dict | None]]
SnapshotPart = Callable[[Caller], Awaitable[Any]]


@dataclass(frozen=True)
class Command:
    event: str
    handler: Handler
    roles: tuple[str, ...]
    max_bytes: int
    cost: float
    timeout_s: float


@dataclass
class _Bucket:
    """Token bucket: `rate` events/s, bursts up to `burst`."""

    tokens: float
    stamp: float


@dataclass
class Registry:
    """Commands and snapshot parts by name, and the dispatcher that runs them safely."""

    max_bytes: int = 16 * 1024
    rate: float = 20.0  # events per second per socket (sustained)
    burst: float = 40.0  # events a socket may send at once
    timeout_s: float = 5.0  # a command's deadline (BUSY past it)
    join_deadline_s: float = 3.0  # how long a snapshot's failed parts are retried
    snapshot_cache_s: float = 0.2  # a shared snapshot value is reused this long (0: only concurrent joins share)
    commands: dict[str, Command] = field(default_factory=dict)
    parts: dict[str, SnapshotPart] = field(default_factory=dict)
    shared_parts: set[str] = field(default_factory=set)
    fetches: int = 0  # shared values fetched from the stores (not served from the cache)
    _epoch: int = 0  # bumped by invalidate: a fetch that started before is not kept
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _cache: dict[tuple[Any, ...], tuple[float, Any]] = field(default_factory=dict)
    _inflight: dict[tuple[Any, ...], asyncio.Future[Any]] = field(default_factory=dict)

    # ---- plugging in ---------------------------------------------------------------------------

    def command(self, event: str, *, roles: Iterable[str] = EVERYONE, max_bytes: int | None = None,
                cost: float = 1.0, timeout_s: float | None = None) -> Callable[[Handler], Handler]:
        """Decorator: handle client event `event` for callers whose role is in `roles`.

        `cost` is how many rate tokens one call takes (a heavy command may cost more)."""
        roles = tuple(roles)
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            raise ValueError(f"unknown roles {bad!r}")
        if event in self.commands:
            raise ValueError(f"hub command {event!r} is already registered")
        if event in ("connect", "disconnect", "*"):
            raise ValueError(f"{event!r} is reserved")

        def deco(fn: Handler) -> Handler:
            self.commands[event] = Command(event, fn, roles, max_bytes or self.max_bytes, cost,
                                           timeout_s or self.timeout_s)
            return fn

        return deco

    def snapshot_part(self, name: str, *, shared: bool = False) -> Callable[[SnapshotPart], SnapshotPart]:
        """Decorator: `snapshot[name] = await fn(caller)` in every join snapshot.

        `shared=True`: the value depends only on the caller's broadcast and whether it is staff, so
        one fetch serves every join of that broadcast and audience (see `shared`); `fn` then gets
        whichever caller asked first and must not look at who it is beyond that."""
        if name in self.parts:
            raise ValueError(f"snapshot part {name!r} is already registered")

        def deco(fn: SnapshotPart) -> SnapshotPart:
            self.parts[name] = fn
            if shared:
                self.shared_parts.add(name)
            return fn

        return deco

    # ---- the shared snapshot cache -------------------------------------------------------------

    async def shared(self, key: tuple[Any, ...], fetch: Callable[[], Awaitable[Any]]) -> Any:
        """`await fetch()`, shared: concurrent callers with the same `key` wait for ONE fetch
        (single flight), and its value is reused until `snapshot_cache_s` after that fetch
        *started*, so a change made before a join began is in its snapshot if it is older than
        the cache age. `key[1]` is the broadcast (`invalidate`). A failed fetch is not kept: every
        waiter gets its exception and the next caller fetches again. Values are shared between
        callers: never mutate one."""
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        fut = self._inflight.get(key)
        if fut is None:
            fut = self._inflight[key] = asyncio.ensure_future(self._fetch(key, fetch, time.monotonic(), self._epoch))
            fut.add_done_callback(_retrieve)
        return await asyncio.shield(fut)  # a waiter that times out does not cancel the others' fetch

    def _fresh(self, key: tuple[Any, ...]) -> Any:
        hit = self._cache.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else _MISS

    async def _fetch(self, key: tuple[Any, ...], fetch: Callable[[], Awaitable[Any]], started: float,
                     epoch: int) -> Any:
        try:
            self.fetches += 1
            value = await fetch()
        finally:
            if self._inflight.get(key) is asyncio.current_task():
                del self._inflight[key]
        if self.snapshot_cache_s > 0 and epoch == self._epoch:
            if len(self._cache) >= _CACHE_MAX:
                now = time.monotonic()
                for k in [k for k, (exp, _v) in self._cache.items() if exp <= now]:
                    del self._cache[k]
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
            self._cache[key] = (started + self.snapshot_cache_s, value)
        return value

    def invalidate(self, broadcast: str) -> None:
        """Forget this node's shared values of a broadcast (its staff changed something here): the
        next join fetches again, and a fetch already under way is not kept."""
        self._epoch += 1
        for k in [k for k in self._cache if len(k) > 1 and k[1] == broadcast]:
            del self._cache[k]
        for k in [k for k in self._inflight if len(k) > 1 and k[1] == broadcast]:
            del self._inflight[k]

    # ---- running -------------------------------------------------------------------------------

    def forget(self, sid: str) -> None:
        """Drop a disconnected socket's rate state."""
        self._buckets.pop(sid, None)

    def charge(self, sid: str, cost: float = 1.0) -> int:
        """Rate tokens for something refused before dispatch (bad frames, live/fanout/server.py), so
        it counts toward the same flood limit: 0 if the socket may go on, else ms until it may."""
        return self._take(sid, cost)

    def _take(self, sid: str, cost: float) -> int:
        """0 if the socket may go on, else milliseconds until it may."""
        now = time.monotonic()
        b = self._buckets.get(sid)
        if b is None:
            b = self._buckets[sid] = _Bucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate)
        b.stamp = now
        if b.tokens >= cost:
            b.tokens -= cost
            return 0
        return max(1, int((cost - b.tokens) / self.rate * 1000))

    async def dispatch(self, caller: Caller | None, event: Any, args: tuple) -> dict[str, Any]:
        """Run one client event and return its ack. Never raises."""
        start = time.perf_counter()
        cmd = self.commands.get(event) if isinstance(event, str) else None
        label = cmd.event if cmd else "_unknown"
        ack = await self._run(caller, event, cmd, args)
        code = "OK" if ack.get("ok") else ack["error"]["code"]
        if code == "OK" and caller is not None and caller.is_staff and (self._cache or self._inflight):
            self.invalidate(caller.broadcast)  # the host's change is in the next join on this node
        metrics.HUB_COMMANDS.labels(label, code).inc()
        metrics.HUB_COMMAND_SECONDS.labels(label, code).observe(time.perf_counter() - start)
        return ack

    async def _run(self, caller: Caller | None, event: Any, cmd: Command | None, args: tuple) -> dict[str, Any]:
        if caller is None:
            return error_ack(Code.NOT_JOINED, "this socket has not joined a broadcast")
        if caller.exp and time.time() >= caller.exp:
            return error_ack(Code.TOKEN_EXPIRED, "the token has expired; reconnect with a fresh one")
        wait_ms = self._take(caller.sid, cmd.cost if cmd else 1.0)
        if wait_ms:
            return error_ack(Code.FLOOD, "too many events; slow down", retry_after=wait_ms)
        if cmd is None:
            return error_ack(Code.UNKNOWN_EVENT, f"unknown event {str(event)[:64]!r}")
        if len(args) > 1:
            return error_ack(Code.BAD_PAYLOAD, "send one JSON object as the event's only argument")
        payload = args[0] if args else {}
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            return error_ack(Code.BAD_PAYLOAD, "the payload must be a JSON object")
        try:
            size = len(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS))
        except (TypeError, orjson.JSONEncodeError):
            return error_ack(Code.BAD_PAYLOAD, "the payload is not plain JSON")
        if size > cmd.max_bytes:
            return error_ack(Code.PAYLOAD_TOO_LARGE, f"payload larger than {cmd.max_bytes} bytes", max_bytes=cmd.max_bytes)
        if caller.role not in cmd.roles:
            return error_ack(Code.FORBIDDEN, f"role {caller.role!r} may not send {cmd.event!r}")
        try:
            async with asyncio.timeout(cmd.timeout_s):  # no extra task per event (wait_for makes one)
                result = await cmd.handler(caller, payload)
        except DomainError as exc:  # a refusal: nothing changed, the code says why
            return refusal_ack(exc)
        except Exception as exc:  # noqa: BLE001 - the one place a handler's failure becomes an ack
            over = overload_code(exc)
            if over is None:
                log.exception("hub command %s failed", cmd.event)
                return error_ack(Code.INTERNAL, "internal error")
            log.warning("hub command %s answered %s: %s", cmd.event, over.code, type(exc).__name__)
            metrics.OVERLOAD_ANSWERS.labels(over.code, "command").inc()
            return error_ack(over.code, over.message, retry_after=over.retry_after_ms)
        if result is None:
            return {"ok": True}
        if not isinstance(result, dict):
            log.error("hub command %s returned %s, not a dict", cmd.event, type(result).__name__)
            return error_ack(Code.INTERNAL, "internal error")
        return {"ok": True, **result}

    async def snapshot(self, caller: Caller) -> dict[str, Any]:
        """Every registered part, fetched concurrently (shared parts from the cache when fresh). A
        failing part is retried (backoff) until the join deadline; one that still fails is None and
        named in `partial`, with `retry_after` ms."""
        deadline = time.monotonic() + self.join_deadline_s
        out: dict[str, Any] = {}
        pending = list(self.parts)
        delay = 0.05
        last: dict[str, BaseException] = {}
        while pending:
            todo = []
            for name in pending:
                value = self._fresh(self._key(name, caller)) if name in self.shared_parts else _MISS
                if value is _MISS:
                    todo.append(name)
                else:
                    out[name] = value
            if not todo:
                pending = []
                break
            with batched():  # every part's reads (and other joins' beside them) in one round trip
                tasks = [asyncio.ensure_future(self._part(n, caller)) for n in todo]
            try:
                _done, late = await asyncio.wait(tasks, timeout=max(0.05, deadline - time.monotonic()))
            except asyncio.CancelledError:
                for t in tasks:
                    t.cancel()
                raise
            for t in late:
                t.cancel()
            failed = []
            for name, t in zip(todo, tasks):
                if t in late or t.cancelled():
                    exc: BaseException | None = TimeoutError(f"snapshot part {name} timed out")
                else:
                    exc = t.exception()
                if exc is not None:
                    metrics.SNAPSHOT_PART_FAILURES.labels(name).inc()
                    last[name] = exc
                    failed.append(name)
                else:
                    out[name] = t.result()
            pending = failed
            if not pending or time.monotonic() + delay >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        if pending:
            for name in pending:
                out[name] = None
                exc = last[name]
                if overload_code(exc) is None:
                    log.error("snapshot part %s failed", name, exc_info=exc)
                else:
                    log.warning("snapshot part %s failed: %s", name, type(exc).__name__)
            over = [overload_code(last[n]) for n in pending]
            code = "UNAVAILABLE" if any(o is not None and o.code == "UNAVAILABLE" for o in over) else "BUSY"
            metrics.OVERLOAD_ANSWERS.labels(code, "snapshot").inc()
            out["partial"] = sorted(pending)
            out["retry_after"] = max((o.retry_after_ms for o in over if o is not None), default=500)
        return out

    def _key(self, name: str, caller: Caller) -> tuple[Any, ...]:
        return ("part", caller.broadcast, name, caller.is_staff)

    async def _part(self, name: str, caller: Caller) -> Any:
        fn = self.parts[name]
        if name in self.shared_parts:
            return await self.shared(self._key(name, caller), lambda: fn(caller))
        return await fn(caller)


_MISS = object()
_CACHE_MAX = 4096  # shared values kept at most (parts x broadcasts x audiences)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """A shared fetch whose every waiter gave up must not log "exception never retrieved"."""
    if not fut.cancelled():
        fut.exception()
