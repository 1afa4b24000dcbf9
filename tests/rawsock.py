"""A raw Socket.IO test client that can send any frame (well-formed or not) in either codec and
read acks by id, or stop reading altogether. Built on loadtest/fanout_raw.py's handshake."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgpack
import orjson

from loadtest.fanout_raw import RawSocketIO, raw_connect


class Raw:
    """One connected raw socket. `start()` runs a reader that answers pings, records events and
    acks (by id) and the close code; without it the client reads nothing (a non-reading peer)."""

    def __init__(self, sock: RawSocketIO, record: bool = True) -> None:
        self.sock = sock
        self.record = record  # keep the events heard (off for long fuzz runs: only acks matter)
        self.ws = sock.ws
        self.codec = sock.codec
        self.acks: dict[Any, Any] = {}
        self.events: list[tuple[Any, Any]] = []
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.closed = asyncio.Event()
        self._got = asyncio.Event()
        self._reader: asyncio.Task | None = None
        self._next_id = 1000

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, url: str, token: str, codec: str = "json",
                      record: bool = True) -> Raw:
        return cls(await raw_connect(session, url, {"token": token}, codec=codec), record)

    def start(self) -> Raw:
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.ERROR):
                    if msg.type == aiohttp.WSMsgType.CLOSE:
                        self.close_reason = str(msg.extra or "")
                    break
                if msg.type == aiohttp.WSMsgType.BINARY:
                    self._packet(msgpack.unpackb(msg.data, strict_map_key=False))
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    self._text(msg.data)
                self._got.set()
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            self._got.set()

    def _text(self, s: str) -> None:
        if s == "2":
            asyncio.ensure_future(self.ws.send_str("3"))
        elif s.startswith("42"):
            if self.record:
                data = orjson.loads(s[2:])
                self.events.append((data[0], data[1] if len(data) > 1 else None))
        elif s.startswith("43"):
            body = s[2:]
            i = 0
            while i < len(body) and body[i].isdigit():
                i += 1
            self.acks[int(body[:i])] = orjson.loads(body[i:])[0]

    def _packet(self, pkt: dict) -> None:
        if pkt.get("type") == 2:
            if self.record:
                data = pkt["data"]
                self.events.append((data[0], data[1] if len(data) > 1 else None))
        elif pkt.get("type") == 3:
            self.acks[pkt.get("id")] = (pkt.get("data") or [None])[0]

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # ---- sending --------------------------------------------------------------------------------

    async def text(self, s: str) -> None:
        await self.ws.send_str(s)

    async def binary(self, b: bytes) -> None:
        await self.ws.send_bytes(b)

    async def emit(self, data: Any, ack_id: int | None = None) -> None:
        """An EVENT packet whose data is `data` (normally [name, payload]) in this socket's codec."""
        if self.codec == "msgpack":
            pkt: dict[str, Any] = {"type": 2, "data": data, "nsp": "/"}
            if ack_id is not None:
                pkt["id"] = ack_id
            await self.binary(msgpack.packb(pkt))
        else:
            await self.text("42" + ("" if ack_id is None else str(ack_id)) + orjson.dumps(data).decode())

    async def ack(self, ack_id: int, timeout: float = 15.0) -> Any:
        """The ack with this id (the reader must be running); AssertionError if none comes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while ack_id not in self.acks:
            if self.closed.is_set():
                raise AssertionError(f"socket closed ({self.close_code} {self.close_reason!r}) before ack {ack_id}")
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no ack {ack_id} within {timeout:g}s")
            self._got.clear()
            try:
                await asyncio.wait_for(self._got.wait(), left)
            except TimeoutError:
                pass
        return self.acks.pop(ack_id)

    async def call(self, event: Any, payload: Any = None, timeout: float = 15.0) -> Any:
        ack_id = self.new_id()
        await self.emit([event] if payload is None else [event, payload], ack_id)
        return await self.ack(ack_id, timeout)

    async def wait_closed(self, timeout: float = 15.0) -> tuple[int | None, str]:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code, self.close_reason

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if not self.ws.closed:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:  # noqa: BLE001 - teardown
                pass
