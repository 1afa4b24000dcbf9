"""Which process holds a broadcast's publish, shared through Redis.

The process that holds the WHIP session is the origin. With several worker processes or nodes,
this record lets every other process (1) refuse another host with 409 (the same host takes the
claim over: its new publish wins, the old process ends its copy), (2) pull the broadcast from the
origin's internal listener named in the record (`url`) to serve its own WebRTC viewers (cascade,
live/media/edge.py) - or, with the cascade off, answer them `503 USE_HLS` (reason
`other_process`) instead of `404 NOT_LIVE` - and (3) report `live: true` in the media state.
The claim is a key with a TTL, renewed while the publish lives, so a crashed process frees it."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis

log = logging.getLogger("hawker.media.claims")

TTL_MS = 15_000
RENEW_S = 5.0
# Claim: free, or held by the same host (`sub`): a takeover. Another host's claim is a conflict.
_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, data = pcall(cjson.decode, cur)
  if not ok or type(data) ~= 'table' or data['sub'] ~= ARGV[2] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
if cur then return 2 end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Renew: ours -> extend; gone (expired, Redis restarted) -> ours again; someone else's -> 0 (lost).
_RENEW = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""

LostListener = Callable[[str, str], None]


def _key(broadcast: str) -> str:
    return f"hawker:media:publisher:{{{broadcast}}}"


class PublishClaims:
    """Claim on publish (free, or the same host taking over), renew every 5 s, compare-and-delete
    on end. Redis trouble never blocks the local publish: the process then behaves as if it were
    alone. When another process takes the claim over (the same host published there), `on_lost`
    is called with (broadcast, session id) so this process ends its copy of the publish."""

    def __init__(self, redis: aioredis.Redis | None, node_id: str) -> None:
        self.redis = redis
        self.node_id = node_id
        self.on_lost: LostListener | None = None
        self.url: str | None = None  # this process's internal listener: edges pull from here (cascade)
        self._held: dict[str, tuple[str, bytes]] = {}  # broadcast -> (session id, value)
        self._renewers: dict[str, asyncio.Task[None]] = {}

    async def claim(self, broadcast: str, session_id: str, sub: str, codec: str | None = None) -> bool:
        """True if this process may publish `broadcast` for host `sub` (or Redis cannot tell)."""
        value = orjson.dumps({"node": self.node_id, "session": session_id, "sub": sub, "codec": codec,
                              "url": self.url})
        if self.redis is not None:
            try:
                ok = await self.redis.eval(_CLAIM, 1, _key(broadcast), value, sub, TTL_MS)
            except Exception:  # noqa: BLE001 - Redis down: publish locally
                log.warning("media claim for %s failed; publishing without a shared claim", broadcast, exc_info=True)
                ok = 1
            if not ok:
                return False
        self._stop_renewing(broadcast)
        self._held[broadcast] = (session_id, value)
        if self.redis is not None:
            self._renewers[broadcast] = asyncio.ensure_future(self._renew(broadcast, session_id, value))
        return True

    async def _renew(self, broadcast: str, session_id: str, value: bytes) -> None:
        redis = self.redis
        if redis is None:  # no shared claim to renew (claim() starts no renewer then)
            return
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                ok = await redis.eval(_RENEW, 1, _key(broadcast), value, TTL_MS)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a Redis blip must not end the renewals: the next round retries
                log.warning("renewing the media claim for %s failed", broadcast, exc_info=True)
                continue
            if not ok:
                log.warning("the media claim for %s was taken over by another process", broadcast)
                if self._held.get(broadcast, ("",))[0] == session_id:
                    self._held.pop(broadcast, None)
                    self._renewers.pop(broadcast, None)
                if self.on_lost is not None:
                    self.on_lost(broadcast, session_id)
                return

    def _stop_renewing(self, broadcast: str) -> None:
        task = self._renewers.pop(broadcast, None)
        if task is not None:
            task.cancel()

    async def release(self, broadcast: str, session_id: str) -> None:
        """Give the claim up, unless a newer session of this process (a takeover) holds it now."""
        held = self._held.get(broadcast)
        if held is None or held[0] != session_id:
            return
        self._stop_renewing(broadcast)
        del self._held[broadcast]
        if self.redis is None:
            return
        try:
            await self.redis.eval(_RELEASE, 1, _key(broadcast), held[1])
        except Exception:  # noqa: BLE001 - the claim expires by itself; ending the publish goes on
            log.warning("releasing the media claim for %s failed (it expires in %d s)", broadcast,
                        TTL_MS // 1000, exc_info=True)

    async def holder(self, broadcast: str) -> dict[str, Any] | None:
        """The claim of another process, if any ({"node", "session", "sub", "codec", "url"})."""
        if self.redis is None:
            return None
        try:
            raw = await self.redis.get(_key(broadcast))
        except Exception:  # noqa: BLE001 - no answer reads as no holder: the caller offers HLS
            return None
        if raw is None:
            return None
        data = orjson.loads(raw)
        return None if data.get("node") == self.node_id else data

    async def close(self) -> None:
        for broadcast, (session_id, _) in list(self._held.items()):
            await self.release(broadcast, session_id)
