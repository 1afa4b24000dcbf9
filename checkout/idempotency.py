"""Idempotency-Key as the payment platforms define it, for any mutating call.

Same key and same request -> the stored response; same key, different request -> IDEMPOTENCY_MISMATCH
(422); the same key while the first request is still running -> IDEMPOTENCY_IN_PROGRESS (409).
Keys are scoped (per user) and kept 24 h. One Lua script claims a key atomically, so two nodes
racing on one key see exactly one winner."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

DAY_S = 24 * 3600
MAX_KEY_LEN = 255

_CLAIM = """
-- KEYS: record   ARGV: fingerprint, ttl_s, lock_s
local cur = redis.call('HMGET', KEYS[1], 'fp', 'state', 'status', 'body')
if not cur[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'running')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
  return {'NEW'}
end
if cur[1] ~= ARGV[1] then return {'MISMATCH'} end
if cur[2] == 'running' then return {'RUNNING'} end
return {'DONE', cur[3], cur[4]}
"""


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: `state` is NEW (go ahead), DONE (replay), MISMATCH or RUNNING."""

    state: str
    status: int = 0
    body: Any = None


def fingerprint(*parts: Any) -> str:
    """A stable digest of what the request asked for (method, path, body...)."""
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


class IdempotencyStore:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int = DAY_S, lock_s: int = 60, prefix: str = "idem") -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.lock_s = lock_s  # a crashed request's claim frees itself after this
        self.prefix = prefix
        self._claim = redis.register_script(_CLAIM)

    def _key(self, scope: str, key: str) -> str:
        return f"{self.prefix}:{{{scope}}}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"

    async def claim(self, scope: str, key: str, fp: str) -> Claim:
        r = await self._claim(keys=[self._key(scope, key)], args=[fp, self.ttl_s, self.lock_s])
        state = r[0].decode() if isinstance(r[0], bytes) else r[0]
        if state == "DONE":
            return Claim("DONE", int(r[1]), orjson.loads(r[2]))
        return Claim(state)

    async def finish(self, scope: str, key: str, status: int, body: Any) -> None:
        """Store the answer: every retry with this key gets it for the next ttl_s."""
        k = self._key(scope, key)
        await self.redis.hset(k, mapping={"state": "done", "status": status, "body": orjson.dumps(body)})
        await self.redis.expire(k, self.ttl_s)

    async def forget_scope(self, scope: str) -> int:
        """Erasure: delete every record of one scope (a user's stored requests and answers)."""
        pattern = f"{self.prefix}:{{" + "".join("\\" + c if c in "*?[]\\" else c for c in scope) + "}:*"
        n = 0
        async for key in self.redis.scan_iter(match=pattern, count=1000):
            n += await self.redis.delete(key)
        return n

    async def release(self, scope: str, key: str) -> None:
        """Forget a claim whose request failed before deciding anything (it may be retried)."""
        await self.redis.delete(self._key(scope, key))


def valid_key(key: str | None) -> bool:
    return key is not None and 0 < len(key) <= MAX_KEY_LEN and key.isprintable()
