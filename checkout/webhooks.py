"""Merchant webhooks: registered endpoints, signed deliveries, retries, a dead-letter list.

Events go into one Redis stream read by a consumer group, so any node delivers and a crashed
node's pending deliveries are claimed by another (XAUTOCLAIM). A failed delivery is retried with
exponential backoff and jitter, at most `max_attempts` times, then dead-lettered where the host
can see and redeliver it. Every event has a stable id, so receivers can de-duplicate; the body is
the same bytes on every attempt, and `Hawker-Signature: t=<unix>,v1=<hex hmac-sha256("t.body")>`,
with the Standard Webhooks headers beside it (checkout/standard_webhooks.py); the signature is
checkout/signature.py, the POST itself checkout/webhook_post.py.

Where a delivery may go is checkout/egress.py's policy, checked at registration and again at every
delivery on the addresses resolved then; the POST connects to exactly those addresses, follows no
redirect, and a failure is recorded as a generic code, never the remote's answer."""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, cast
from urllib.parse import urlparse

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from checkout import metrics, standard_webhooks
from checkout.egress import DESTINATION_REFUSED, REFUSED, EgressPolicy, EgressRefused
from checkout.signature import sign, verify
from checkout.ulid import new_ulid
from checkout.webhook_post import post
from domain import Code, DomainError

log = logging.getLogger("hawker.webhooks")

__all__ = ["EVENT_TYPES", "Endpoint", "WebhookError", "Webhooks", "sign", "verify"]

EVENT_TYPES = ("order.created", "order.refunded", "reservation.expired", "sale.soldout", "user.erased")
STREAM = "{webhooks}:deliveries"  # one hash tag: the requeue script runs on Redis Cluster
GROUP = "delivery"
RETRIES = "{webhooks}:retries"  # zset: delivery json -> due unix ms
EMITTED = "{webhooks}:emitted"  # + ":<event id>": first emitter wins
DEAD = "webhooks:dead"  # hash: delivery id -> json
DEAD_INDEX = "webhooks:dead-index"  # zset: delivery id -> dead_at ms (what expire_dead reads)
MAX_ENDPOINTS = 20


class WebhookError(DomainError):
    """An endpoint that cannot be registered: VALIDATION, WEBHOOK_URL_REFUSED or LIMIT_REACHED."""


@dataclass(frozen=True)
class Endpoint:
    id: str
    broadcast: str
    url: str
    secret: str
    events: tuple[str, ...]
    created_at: int

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d["events"] = list(self.events)
        d["secret"] = self.secret[:4] + "…"
        return d


def _validate_url(url: Any) -> str:
    if not isinstance(url, str) or len(url) > 2000:
        raise WebhookError(Code.VALIDATION, "url must be a string")
    try:
        p = urlparse(url)
        p.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise WebhookError(Code.VALIDATION, "url must be an http(s) URL") from None
    if p.scheme not in ("http", "https") or not p.hostname:
        raise WebhookError(Code.VALIDATION, "url must be an http(s) URL")
    return url


_REQUEUE = """
-- KEYS: retries zset, stream   ARGV: now_ms, max
local due = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, d in ipairs(due) do
  redis.call('ZREM', KEYS[1], d)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 100000, '*', 'd', d)
end
return #due
"""


_EMIT = """
-- KEYS: emitted marker, stream   ARGV: ttl_s, delivery json...
if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
for i = 2, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 100000, '*', 'd', ARGV[i])
end
return 1
"""


@dataclass(frozen=True)
class Backoff:
    """How a failed delivery is retried: at most `max_attempts` tries; after the n-th failure the
    next try waits base_delay_s * 2^(n-1) (at most max_delay_s), jittered down to half of that so
    that a receiver coming back is not hit by every retry at once."""

    max_attempts: int = 8
    base_delay_s: float = 2.0
    max_delay_s: float = 600.0

    def due_ms(self, failures: int, now_s: float) -> int:
        """When (epoch ms) to try again after `failures` failed attempts, from `now_s`."""
        delay = min(self.max_delay_s, self.base_delay_s * 2 ** (failures - 1))
        return int((now_s + delay * random.uniform(0.5, 1.0)) * 1000)


class Webhooks:
    def __init__(self, redis: aioredis.Redis, *, consumer: str, max_attempts: int = 8, base_delay_s: float = 2.0,
                 max_delay_s: float = 600.0, timeout_s: float = 10.0, claim_idle_ms: int = 60_000,
                 poll_ms: int = 500, policy: EgressPolicy | None = None, livemode: bool = False) -> None:
        self.redis = redis
        self.policy = policy or EgressPolicy()  # strict unless the caller allows private/http hosts
        self.livemode = livemode  # every event body says whether real money moved (False: sandbox)
        self.consumer = consumer
        self.backoff = Backoff(max_attempts, base_delay_s, max_delay_s)
        self.timeout_s = timeout_s
        self.claim_idle_ms = claim_idle_ms
        self.poll_ms = poll_ms
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.on_failure: Callable[[str], Awaitable[None]] | None = None
        self._requeue = redis.register_script(_REQUEUE)
        self._emit = redis.register_script(_EMIT)

    # ---- endpoints -----------------------------------------------------------------------------

    async def register(self, broadcast: str, url: Any, secret: Any, events: Any = None) -> Endpoint:
        url = _validate_url(url)
        if not isinstance(secret, str) or not 16 <= len(secret) <= 200:
            raise WebhookError(Code.VALIDATION, "secret must be a string of 16 to 200 characters")
        if events is None:
            events = list(EVENT_TYPES)
        if not isinstance(events, list) or not events or any(e not in EVENT_TYPES for e in events):
            raise WebhookError(Code.VALIDATION, f"events must be a non-empty list of {', '.join(EVENT_TYPES)}")
        try:  # checked again at every delivery: this only refuses what could never be delivered
            await self.policy.resolve(url, self.timeout_s)
        except EgressRefused as exc:
            raise WebhookError(REFUSED, f"this webhook URL is not allowed: {exc.reason}") from None
        if await self.redis.hlen(f"webhooks:ep:{broadcast}") >= MAX_ENDPOINTS:
            raise WebhookError(Code.LIMIT_REACHED, f"at most {MAX_ENDPOINTS} endpoints per broadcast")
        ep = Endpoint("we_" + new_ulid(), broadcast, url, secret, tuple(dict.fromkeys(events)), int(time.time() * 1000))
        await self.redis.hset(f"webhooks:ep:{broadcast}", ep.id, orjson.dumps(asdict(ep)))
        return ep

    async def endpoints(self, broadcast: str) -> list[Endpoint]:
        raw = await self.redis.hgetall(f"webhooks:ep:{broadcast}")
        out = []
        for v in raw.values():
            d = orjson.loads(v)
            d["events"] = tuple(d["events"])
            out.append(Endpoint(**d))
        return sorted(out, key=lambda e: e.created_at)

    async def delete(self, broadcast: str, endpoint_id: str) -> bool:
        return bool(await self.redis.hdel(f"webhooks:ep:{broadcast}", endpoint_id))

    # ---- emitting ------------------------------------------------------------------------------

    async def emit(self, type_: str, broadcast: str, data: dict[str, Any], *, event_id: str | None = None) -> str:
        """Queue `type_` for every endpoint of `broadcast` that wants it. `event_id` makes the call
        idempotent (e.g. "soldout:<sale>"): the same id is queued once."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown webhook event {type_!r}")
        event_id = event_id or "evt_" + new_ulid()
        sec, usec = await self.redis.time()  # times are the server clock's, like every Hawker time
        body = orjson.dumps({"id": event_id, "type": type_, "created_at": sec * 1000 + usec // 1000,
                             "broadcast": broadcast, "livemode": self.livemode, "data": data}).decode()
        deliveries = [orjson.dumps({"id": "wd_" + new_ulid(), "endpoint": ep.id, "broadcast": broadcast,
                                    "event_id": event_id, "type": type_, "attempt": 0, "body": body})
                      for ep in await self.endpoints(broadcast) if type_ in ep.events]
        # "seen this id" and the deliveries in one script: a crash cannot mark an event sent yet lose it
        await self._emit(keys=[f"{EMITTED}:{event_id}", STREAM], args=[7 * 24 * 3600, *deliveries])
        return event_id

    # ---- delivering ----------------------------------------------------------------------------

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def start(self) -> None:
        """Start delivering. Redis may be away (a node started before it, or restarted without its
        data): the worker then creates its group when it can, instead of failing the node."""
        try:
            await self._ensure_group()
        except Exception:  # noqa: BLE001 - any Redis failure here only delays the worker, never the node
            log.warning("webhooks: Redis unavailable at start; the worker retries")
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="webhook-worker")

    async def stop(self) -> None:
        """Stop the worker. A flag as well as a cancel: a cancel that lands inside a blocking Redis
        read can be swallowed by the client, and the loop must still end."""
        self._stopping = True
        if self._task:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=max(5.0, self.poll_ms / 1000 * 4))
            if not done:
                log.warning("webhook worker did not stop in time")

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.step(block_ms=self.poll_ms)
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc) or "no longer exists" in str(exc):
                    await self._recreate_group()
                else:
                    log.exception("webhook worker step failed")
                    await asyncio.sleep(1.0)
            except Exception:  # noqa: BLE001 - Redis down for a moment: try again shortly
                log.exception("webhook worker step failed")
                await asyncio.sleep(1.0)

    async def _recreate_group(self) -> None:
        """The stream or its group vanished (Redis restarted without persistence, or flushed)."""
        try:
            await self._ensure_group()
        except Exception:  # noqa: BLE001 - Redis still away: the worker's next round tries again
            await asyncio.sleep(1.0)

    async def step(self, block_ms: int | None = None) -> int:
        """One round: move due retries back, claim stale pending entries, deliver new ones."""
        await self._requeue_due()
        handled = 0
        _, claimed, _ = await self.redis.xautoclaim(STREAM, GROUP, self.consumer, self.claim_idle_ms, "0-0", count=50)
        for entry_id, fields in claimed:
            await self._handle(entry_id, fields)
            handled += 1
        # RESP2 (connect() asks for no other): [[stream, [(id, fields), ...]], ...] or None
        got = cast("list[list[Any]] | None",
                   await self.redis.xreadgroup(GROUP, self.consumer, {STREAM: ">"}, count=50, block=block_ms))
        for _stream, entries in got or []:
            for entry_id, fields in entries:
                await self._handle(entry_id, fields)
                handled += 1
        return handled

    async def _requeue_due(self) -> None:
        """Due retries go back on the stream in one script: a crash can neither lose nor double one."""
        await self._requeue(keys=[RETRIES, STREAM], args=[int(time.time() * 1000), 100])

    async def _handle(self, entry_id: Any, fields: dict[Any, Any] | None) -> None:
        # fields is None for an entry deleted while pending (XAUTOCLAIM on Redis 6.2): nothing to deliver
        raw = (fields.get(b"d") or fields.get("d")) if fields else None
        if raw is None:
            await self.redis.xack(STREAM, GROUP, entry_id)
            return
        delivery = orjson.loads(raw)
        ok, error = await self._deliver(delivery)
        delivery["attempt"] = int(delivery["attempt"]) + 1
        if ok:
            metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
        elif delivery["attempt"] >= self.backoff.max_attempts:
            delivery["error"] = error
            delivery["dead_at"] = int(time.time() * 1000)
            await self.redis.hset(DEAD, delivery["id"], orjson.dumps(delivery))
            await self.redis.zadd(f"{DEAD}:{delivery['broadcast']}", {delivery["id"]: delivery["dead_at"]})
            await self.redis.zadd(DEAD_INDEX, {delivery["id"]: delivery["dead_at"]})
            metrics.WEBHOOK_DELIVERIES.labels("dead").inc()
            if self.on_failure:
                await self.on_failure(delivery["broadcast"])
        else:
            delivery["error"] = error
            due = self.backoff.due_ms(delivery["attempt"], time.time())
            await self.redis.zadd(RETRIES, {orjson.dumps(delivery): due})
            metrics.WEBHOOK_DELIVERIES.labels("retry").inc()
        await self.redis.xack(STREAM, GROUP, entry_id)
        await self.redis.xdel(STREAM, entry_id)

    async def _deliver(self, delivery: dict[str, Any]) -> tuple[bool, str]:
        """One POST. The error recorded is a generic code: what the remote answered (a status, a
        reset, a timeout) would tell a host which internal addresses answer."""
        raw = await self.redis.hget(f"webhooks:ep:{delivery['broadcast']}", delivery["endpoint"])
        if raw is None:
            return False, Code.ENDPOINT_DELETED
        ep = orjson.loads(raw)
        body = delivery["body"].encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "Hawker-Signature": sign(ep["secret"], body, ts),
                   "Hawker-Event-Id": delivery["event_id"], "Hawker-Event-Type": delivery["type"],
                   "Hawker-Delivery-Attempt": str(int(delivery["attempt"]) + 1)}
        headers.update(standard_webhooks.headers(ep["secret"], delivery["event_id"], ts, body))
        try:
            target = await self.policy.resolve(ep["url"], self.timeout_s)  # at every delivery: the name may point elsewhere now
        except EgressRefused as exc:
            log.warning("webhook %s refused by the egress policy: %s", ep.get("id"), exc.reason)
            metrics.WEBHOOK_DELIVERIES.labels("refused").inc()
            return False, DESTINATION_REFUSED
        return await post(target, ep["url"], body, headers, self.timeout_s, str(ep.get("id")))

    # ---- dead letters --------------------------------------------------------------------------

    async def dead_letters(self, broadcast: str, limit: int = 100) -> list[dict[str, Any]]:
        # no withscores: members only; redis-py's return type does not narrow on the flag
        ids = cast("list[bytes]", await self.redis.zrevrange(f"{DEAD}:{broadcast}", 0, limit - 1))
        if not ids:
            return []
        raws = await self.redis.hmget(DEAD, ids)
        out = []
        for r in raws:
            if r:
                d = orjson.loads(r)
                d.pop("body", None)
                out.append(d)
        return out

    async def _drop_dead(self, delivery_id: str, broadcast: str | None) -> None:
        await self.redis.hdel(DEAD, delivery_id)
        await self.redis.zrem(DEAD_INDEX, delivery_id)
        if broadcast:
            await self.redis.zrem(f"{DEAD}:{broadcast}", delivery_id)

    async def expire_dead(self, dead_before_ms: int, limit: int = 1000) -> int:
        """Dead letters keep the event body (an order's contact data): they go after the retention."""
        n = 0
        for member in await self.redis.zrangebyscore(DEAD_INDEX, "-inf", dead_before_ms, start=0, num=limit):
            did = member.decode() if isinstance(member, bytes) else str(member)
            raw = await self.redis.hget(DEAD, did)
            await self._drop_dead(did, orjson.loads(raw)["broadcast"] if raw else None)
            n += 1
        return n

    async def forget_user(self, user: str, order_ids: set[str]) -> int:
        """Erasure: drop dead letters about this user (their orders or their id in the body)."""
        n = 0
        async for did, raw in self.redis.hscan_iter(DEAD, count=500):
            d = orjson.loads(raw)
            data = orjson.loads(d.get("body") or "{}").get("data") or {}
            order = data.get("order") or {}
            if data.get("user") == user or order.get("user") == user or order.get("id") in order_ids:
                await self._drop_dead(did.decode() if isinstance(did, bytes) else did, d.get("broadcast"))
                n += 1
        return n

    async def redeliver(self, broadcast: str, delivery_id: str) -> bool:
        raw = await self.redis.hget(DEAD, delivery_id)
        if raw is None:
            return False
        d = orjson.loads(raw)
        if d["broadcast"] != broadcast:
            return False
        if not await self.redis.hdel(DEAD, delivery_id):
            return False
        await self.redis.zrem(f"{DEAD}:{broadcast}", delivery_id)
        await self.redis.zrem(DEAD_INDEX, delivery_id)
        d.update(attempt=0, error="")
        d.pop("dead_at", None)
        await self.redis.xadd(STREAM, {"d": orjson.dumps(d)}, maxlen=100_000, approximate=True)
        return True
