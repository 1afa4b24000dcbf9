"""Encode once: a Socket.IO event becomes one complete websocket frame per codec.

Server-to-client websocket frames are unmasked, so header + payload are identical for every socket:
the frame is built once and the same `bytes` object is written to every transport.
  * msgpack codec: a binary frame whose payload is the msgpack Socket.IO packet
    `{"type": 2, "data": [event, *args], "nsp": "/"}` (what socket.io-msgpack-parser and
    python-socketio's `serializer='msgpack'` expect; Engine.IO sends binary messages bare);
  * json codec: a text frame `42[event, *args]` (Engine.IO MESSAGE `4` + Socket.IO EVENT `2`)."""
from __future__ import annotations

import struct
from typing import Any

import msgpack
import orjson

MSGPACK = "msgpack"
JSON = "json"
CODECS = (MSGPACK, JSON)

OP_TEXT = 0x1
OP_BINARY = 0x2


def ws_frame(payload: bytes, opcode: int) -> bytes:
    """One final, unmasked, uncompressed websocket frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, n))
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


class Frame:
    """One message encoded for one codec: `ws` (the whole websocket frame) and, for sockets still
    on long-polling, `eio` (the Engine.IO MESSAGE payload), computed only if asked."""

    __slots__ = ("ws", "_body", "codec")

    def __init__(self, codec: str, body: bytes) -> None:
        self.codec = codec
        self._body = body
        if codec == MSGPACK:
            self.ws = ws_frame(body, OP_BINARY)
        else:
            self.ws = ws_frame(b"42" + body, OP_TEXT)

    @property
    def eio(self) -> str | bytes:
        return self._body if self.codec == MSGPACK else "2" + self._body.decode()


def encode(codec: str, items: list[Any]) -> Frame:
    """`items` is `[event, *args]`."""
    if codec == MSGPACK:
        return Frame(MSGPACK, msgpack.packb({"type": 2, "data": items, "nsp": "/"}))
    return Frame(JSON, orjson.dumps(items, option=orjson.OPT_NON_STR_KEYS))


class Encoded:
    """An event encoded lazily, at most once per codec (only codecs with recipients pay)."""

    __slots__ = ("items", "_frames")

    def __init__(self, event: str, *args: Any) -> None:
        self.items = [event, *args]
        self._frames: dict[str, Frame] = {}

    def frame(self, codec: str) -> Frame:
        f = self._frames.get(codec)
        if f is None:
            f = self._frames[codec] = encode(codec, self.items)
        return f
