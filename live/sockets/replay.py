"""The shoppable replay: after a show, `/watch/<b>` plays the recording (the HLS run's playlist,
which becomes VOD with `#EXT-X-ENDLIST` when the publish ends), replays the chat in sync with it
(chat `ts` are server ms; the player maps them through the playlist's `PROGRAM-DATE-TIME`), offers
the product pins as chapters, and sells what the host left open (`sale.schedule` with
`replay: true`: such a sale is not closed when the broadcast ends).

Here: the pin log (`product.pin` / `product.unpin` acks, one RPUSH per pin: rare, host-driven)
and the `replay.info` command a player asks once it sees the broadcast has ended."""
from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis

from live.config import Config
from live.hub.hub import Hub
from live.hub.registry import EVERYONE
from live.media.service import MediaService

if TYPE_CHECKING:
    from live.node import Node

log = logging.getLogger("hawker.replay")

MAX_CHAPTERS = 500
PINS_TTL_S = 90 * 24 * 3600


def pins_key(broadcast: str) -> str:
    return f"replay:{{{broadcast}}}:pins"


class Replay:
    def __init__(self, config: Config, redis: aioredis.Redis, hub: Hub, media: MediaService) -> None:
        self.hub = hub
        self.redis = redis
        self.media = media
        self.ttl_s = config.analytics_ttl_days * 24 * 3600 or PINS_TTL_S

    def log_pins(self) -> None:
        """Record each successful pin/unpin (server ms) by wrapping those commands once."""
        registry = self.hub.registry
        for event in ("product.pin", "product.unpin"):
            cmd = registry.commands.get(event)
            if cmd is None:
                log.warning("replay: no command %s", event)
                continue
            registry.commands[event] = dataclasses.replace(cmd, handler=self._logged(cmd.handler))

    def _logged(self, inner: Any) -> Any:
        async def handler(caller: Any, payload: dict) -> Any:
            result = await inner(caller, payload)
            product = (result or {}).get("product")
            entry = {"at": int(self.hub.clock.now_ms()), "product_id": product.get("id") if product else None}
            key = pins_key(caller.broadcast)
            pipe = self.redis.pipeline(transaction=False)
            pipe.rpush(key, orjson.dumps(entry))
            pipe.ltrim(key, -MAX_CHAPTERS, -1)
            pipe.expire(key, self.ttl_s)
            await pipe.execute()
            return result
        return handler

    def playlist(self, broadcast: str) -> str | None:
        """The replay's playlist URL when the recording is finished (VOD), else None."""
        hls = self.media.hls  # None on a node built without HLS
        path = hls.playlist_path(broadcast) if hls is not None else None
        try:
            if path is not None and b"#EXT-X-ENDLIST" in path.read_bytes():
                return f"/hls/{broadcast}/index.m3u8"
        except OSError:
            return None
        return None

    async def info(self, caller: Any, payload: dict) -> dict[str, Any]:
        """`replay.info`: the recording, the chapters (pins in order, with the product), whether ended."""
        bc = await self.hub.broadcasts.get(caller.broadcast)
        raw = await self.redis.lrange(pins_key(caller.broadcast), 0, -1)
        chapters = []
        for item in raw:
            try:
                pin = orjson.loads(item)
            except orjson.JSONDecodeError:
                continue
            product = bc.product(pin["product_id"]) if bc is not None and pin.get("product_id") else None
            if product is not None:
                chapters.append({"at": pin["at"], "product_id": product.id, "title": product.title,
                                 "image_url": product.image_url})
        return {"ended": bool(bc and bc.state == "ended"), "playlist": self.playlist(caller.broadcast),
                "chapters": chapters, "started_at": bc.started_at if bc else None,
                "ended_at": bc.ended_at if bc else None}


def register(node: Node) -> None:
    """After live/sockets/broadcast.py: the pin log wraps product.pin / product.unpin."""
    node.replay.log_pins()
    node.hub.command("replay.info", roles=EVERYONE, cost=2)(node.replay.info)
