"""Which process holds a broadcast's publish, shared through Redis.

WebRTC fan-out happens in the process that holds the WHIP session. With several worker processes
or nodes, this record lets every other process (1) refuse a second publisher with 409 and (2)
answer viewers that reach it with `503 USE_HLS` (reason `other_process`) instead of `404 NOT_LIVE`,
and report `live: true` in the media state: HLS segments are plain files every process serves.
The claim is a key with a TTL, renewed while the publish lives, so a crashed process frees it."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import redis.asyncio as aioredis

log = logging.getLogger("hawker.media.claims")

TTL_MS = 15_000
RENEW_S = 5.0
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def _key(broadcast: str) -> str:
    return f"hawker:media:publisher:{{{broadcast}}}"


class PublishClaims:
    """SET NX on publish, renew every 5 s, compare-and-delete on end. Redis trouble never blocks
    the local publish: the process then behaves as if it were alone."""

    def __init__(self, redis: aioredis.Redis | None, node_id: str) -> None:
        self.redis = redis
        self.node_id = node_id
        self._values: dict[str, bytes] = {}
        self._renewers: dict[str, asyncio.Task[None]] = {}

    async def claim(self, broadcast: str, session_id: str, codec: str | None) -> bool:
        """True if this process may publish `broadcast` (or Redis cannot tell)."""
        if self.redis is None:
            return True
        value = orjson.dumps({"node": self.node_id, "session": session_id, "codec": codec})
        try:
            ok = await self.redis.set(_key(broadcast), value, nx=True, px=TTL_MS)
        except Exception:  # noqa: BLE001 - Redis down: publish locally
            log.warning("media claim for %s failed; publishing without a shared claim", broadcast, exc_info=True)
            return True
        if not ok:
            return False
        self._values[broadcast] = value
        self._renewers[broadcast] = asyncio.ensure_future(self._renew(broadcast, value))
        return True

    async def _renew(self, broadcast: str, value: bytes) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                await self.redis.eval(_RENEW, 1, _key(broadcast), value, TTL_MS)  # type: ignore[union-attr]
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.warning("renewing the media claim for %s failed", broadcast, exc_info=True)

    async def release(self, broadcast: str) -> None:
        task = self._renewers.pop(broadcast, None)
        if task is not None:
            task.cancel()
        value = self._values.pop(broadcast, None)
        if value is None or self.redis is None:
            return
        try:
            await self.redis.eval(_RELEASE, 1, _key(broadcast), value)
        except Exception:  # noqa: BLE001
            log.warning("releasing the media claim for %s failed (it expires in %d s)", broadcast,
                        TTL_MS // 1000, exc_info=True)

    async def holder(self, broadcast: str) -> dict[str, Any] | None:
        """The claim of another process, if any ({"node", "session", "codec"})."""
        if self.redis is None:
            return None
        try:
            raw = await self.redis.get(_key(broadcast))
        except Exception:  # noqa: BLE001
            return None
        if raw is None:
            return None
        data = orjson.loads(raw)
        return None if data.get("node") == self.node_id else data

    async def close(self) -> None:
        for broadcast in list(self._values):
            await self.release(broadcast)
