"""A light Socket.IO client on a bare aiohttp websocket: the Engine.IO/Socket.IO v5 handshake by
hand, then plain frame reading. Used by the fan-out benchmark (thousands of these per process) and
by tests that need a client which can stop reading."""
from __future__ import annotations

from typing import Any

import aiohttp
import msgpack
import orjson


class RawSocketIO:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, codec: str, eio_sid: str) -> None:
        self.ws = ws
        self.codec = codec
        self.eio_sid = eio_sid

    def decode(self, msg: aiohttp.WSMessage) -> tuple[str, Any] | None:
        """(event, first arg) of a Socket.IO EVENT frame; answers pings; None for anything else."""
        if msg.type == aiohttp.WSMsgType.BINARY:
            pkt = msgpack.unpackb(msg.data)
            if pkt.get("type") == 2:
                data = pkt["data"]
                return data[0], data[1] if len(data) > 1 else None
            return None
        if msg.type == aiohttp.WSMsgType.TEXT:
            s = msg.data
            if s == "2":
                return ("__ping__", None)
            if s.startswith("42"):
                data = orjson.loads(s[2:])
                return data[0], data[1] if len(data) > 1 else None
        return None

    async def pong(self) -> None:
        await self.ws.send_str("3")


async def raw_connect(session: aiohttp.ClientSession, base_url: str, auth: dict | None, *, codec: str = "msgpack",
                      path: str = "/socket.io/") -> RawSocketIO:
    """Open a websocket, read OPEN, send CONNECT (with `auth`) in the codec, wait for the CONNECT reply."""
    url = base_url.replace("http://", "ws://").rstrip("/") + f"{path}?EIO=4&transport=websocket&codec={codec}"
    ws = await session.ws_connect(url, autoping=True, max_msg_size=0, compress=0)
    opened = await ws.receive(timeout=20)
    if opened.type != aiohttp.WSMsgType.TEXT or not opened.data.startswith("0"):
        raise ConnectionError(f"no Engine.IO OPEN: {opened!r}")
    eio_sid = orjson.loads(opened.data[1:])["sid"]
    if codec == "msgpack":
        await ws.send_bytes(msgpack.packb({"type": 0, "data": auth, "nsp": "/"}))
    else:
        await ws.send_str("40" + (orjson.dumps(auth).decode() if auth is not None else ""))
    while True:
        msg = await ws.receive(timeout=20)
        if msg.type == aiohttp.WSMsgType.BINARY:
            pkt = msgpack.unpackb(msg.data)
            if pkt.get("type") == 0:
                break
            if pkt.get("type") == 4:
                raise ConnectionError(f"refused: {pkt.get('data')}")
        elif msg.type == aiohttp.WSMsgType.TEXT:
            if msg.data.startswith("40"):
                break
            if msg.data.startswith("44"):
                raise ConnectionError(f"refused: {msg.data[2:]}")
            if msg.data == "2":
                await ws.send_str("3")
        else:
            raise ConnectionError(f"closed during handshake: {msg!r}")
    return RawSocketIO(ws, codec, eio_sid)
