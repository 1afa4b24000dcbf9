"""A light Socket.IO client with acks, on a bare aiohttp websocket: thousands per process.

Speaks Engine.IO v4 / Socket.IO v5 by hand (handshake in `fanout_raw.raw_connect`), in either codec
(msgpack or JSON), and offers what a buyer needs: `call()` with an ack, the server clock from
`time` samples, and the events it heard. It imports nothing of the server: load tests reach the
server over the network only. Tokens are minted here with PyJWT and the shared secret, the way a
merchant site mints viewer tokens."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import jwt
import msgpack
import orjson

from loadtest.fanout_raw import raw_connect


def mint(secret: str, *, sub: str, role: str, broadcast: str, ttl: int = 3600) -> str:
    """An HS256 token as documented in docs/protocol.md (claims sub, role, bc, name, iat, exp)."""
    now = int(time.time())
    return jwt.encode({"sub": sub, "role": role, "bc": broadcast, "name": sub, "iat": now, "exp": now + ttl},
                      secret, algorithm="HS256")


class LightClient:
    """One socket: a reader task resolves acks by id and records events."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, codec: str) -> None:
        self.ws = ws
        self.codec = codec
        self.events: list[tuple[str, Any]] = []
        self.snapshot: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.offset_ms = 0.0  # server clock - local clock
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, url: str, token: str, codec: str = "msgpack") -> LightClient:
        raw = await raw_connect(session, url, {"token": token}, codec=codec)
        return cls(raw.ws, codec)

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    self._packet(msgpack.unpackb(msg.data, strict_map_key=False))
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    self._text(msg.data)
        except Exception:  # noqa: BLE001 - a dropped socket ends the reader; callers time out
            pass
        finally:
            for fut in self._acks.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("socket closed"))

    def _packet(self, pkt: dict) -> None:
        kind = pkt.get("type")
        if kind == 3:
            self._ack(pkt.get("id"), (pkt.get("data") or [None])[0])
        elif kind == 2:
            data = pkt.get("data") or []
            self._event(data[0] if data else "", data[1] if len(data) > 1 else None)

    def _text(self, s: str) -> None:
        if s == "2":
            asyncio.ensure_future(self.ws.send_str("3"))
        elif s.startswith("43"):
            i = 2
            while i < len(s) and s[i].isdigit():
                i += 1
            self._ack(int(s[2:i]), (orjson.loads(s[i:]) or [None])[0])
        elif s.startswith("42"):
            data = orjson.loads(s[2:])
            self._event(data[0], data[1] if len(data) > 1 else None)

    def _ack(self, ack_id: Any, data: Any) -> None:
        fut = self._acks.pop(ack_id, None) if isinstance(ack_id, int) else None
        if fut is not None and not fut.done():
            fut.set_result(data)

    def _event(self, name: str, data: Any) -> None:
        if name == "snapshot" and not self.snapshot.done():
            self.snapshot.set_result(data)
        elif name != "tick":  # ticks are many and not needed here
            self.events.append((name, data))

    async def call(self, event: str, payload: dict, timeout: float = 30.0) -> Any:
        """Emit with an ack and wait for it."""
        self._next += 1
        ack_id = self._next
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = fut
        if self.codec == "msgpack":
            await self.ws.send_bytes(msgpack.packb({"type": 2, "data": [event, payload], "nsp": "/", "id": ack_id}))
        else:
            await self.ws.send_str(f"42{ack_id}" + orjson.dumps([event, payload]).decode())
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._acks.pop(ack_id, None)

    async def sync_clock(self, samples: int = 3) -> float:
        """offset_ms from the sample with the smallest round trip (as the player does)."""
        best: tuple[float, float] | None = None
        for _ in range(samples):
            t0 = time.time() * 1000
            ack = await self.call("time", {})
            t1 = time.time() * 1000
            if isinstance(ack, dict) and ack.get("ok"):
                rtt = t1 - t0
                if best is None or rtt < best[0]:
                    best = (rtt, ack["now"] - (t0 + t1) / 2)
        if best is not None:
            self.offset_ms = best[1]
        return self.offset_ms

    def server_now_ms(self) -> float:
        return time.time() * 1000 + self.offset_ms

    async def close(self) -> None:
        self._reader.cancel()
        try:
            await asyncio.wait_for(self.ws.close(), 2)
        except Exception:  # noqa: BLE001 - closing is best effort: a dead or slow (2 s) socket must not fail the caller's cleanup
            pass
