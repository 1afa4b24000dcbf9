"""Engine.IO v4 / Socket.IO v5 spoken by hand over one non-blocking socket: the upgrade, WebSocket frames, packets, acks."""
from __future__ import annotations

import _socket
import base64
import errno
import os
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack
import orjson

from loadtest.lightloop import _EPOLLIN, _EPOLLOUT

if TYPE_CHECKING:
    from loadtest.lightloop import LightPool

ACK_TIMEOUT_S = 30.0
_TICK_MSGPACK = b"\xa4tick"


def _frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (RFC 6455 requires clients to mask)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
    mask = os.urandom(4)
    if n:
        key = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + mask + payload



class WireSocket:
    """The wire half of a light viewer (loadtest/lightpool.py's Viewer): bytes in and out of its socket,
    frames split and packets dispatched to the session hooks below. Runs on the pool's thread only."""

    pool: LightPool
    token: str
    codec: str
    state: str
    sock: Any
    fd: int
    buf: bytearray
    out: bytearray
    acks: dict[int, tuple[Callable[[Any, str], None], float]]
    next_ack: int
    ticks: int
    pending_chat: dict[str, float]

    # ---- the session's hooks (Viewer defines them) ---------------------------------------------

    def _fail(self, code: str, retry_after: Any = None) -> None:
        raise NotImplementedError

    def _refused(self, data: Any) -> None:
        raise NotImplementedError

    def _connected(self) -> None:
        raise NotImplementedError

    def _event(self, name: str, data: Any, now_ms: float) -> None:
        raise NotImplementedError

    def _tick_data(self, data: dict[str, Any], now_ms: float) -> None:
        raise NotImplementedError

    # ---- I/O --------------------------------------------------------------------------------

    def _upgrade(self) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        path = f"/socket.io/?EIO=4&transport=websocket&codec={self.codec}"
        self._send_raw((f"GET {path} HTTP/1.1\r\nHost: {self.pool.host}:{self.pool.port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.state = "http"

    def _send_raw(self, data: bytes) -> None:
        if self.sock is None:
            return
        if self.out:
            self.out += data
            return
        try:
            n = self.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError:
            self._fail("CLOSED")
            return
        if n < len(data):
            self.out += data[n:]
            self.pool.modify(self, _EPOLLIN | _EPOLLOUT)

    def writable(self) -> None:
        if self.state == "connecting":
            err = self.sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
            if err:
                self._fail(f"CONNECT_{errno.errorcode.get(err, err)}")
                return
            self.pool.modify(self, _EPOLLIN)
            self._upgrade()
            return
        if self.out:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                return
            except OSError:
                self._fail("CLOSED")
                return
            del self.out[:n]
        if not self.out:
            self.pool.modify(self, _EPOLLIN)

    def readable(self, now_ms: float) -> None:
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._fail("CLOSED" if self.state == "live" else f"CLOSED_IN_{self.state.upper()}")
            return
        self.buf += data
        if self.state == "http":
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[:end]).split(b"\r\n", 1)[0]
            del self.buf[:end + 4]
            if b" 101 " not in status + b" ":
                self._fail("HTTP_" + status.split(b" ")[1].decode(errors="replace") if b" " in status else "HTTP")
                return
            self.state = "eio"
        self._frames(now_ms)

    def _frames(self, now_ms: float) -> None:
        buf = self.buf
        pos, n = 0, len(buf)
        while n - pos >= 2 and self.sock is not None:
            b0, b1 = buf[pos], buf[pos + 1]
            ln, hl = b1 & 0x7F, 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln, hl = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln, hl = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if b1 & 0x80:  # servers do not mask, but tolerate it
                hl += 4
            if n - pos < hl + ln:
                break
            start, end = pos + hl, pos + hl + ln
            pos = end
            opcode = b0 & 0x0F
            if self.state == "live" and (
                    (opcode == 2 and buf.find(_TICK_MSGPACK, start, min(end, start + 32)) >= 0)
                    or (opcode == 1 and buf.startswith(b'42["tick"', start))):
                # the bulk of what a viewer reads: counted in place, copied and decoded only when sampled
                self.ticks += 1
                if self.pending_chat or self.ticks % self.pool.tick_sample_every == 0:
                    self._tick(bytes(buf[start:end]), now_ms, binary=opcode == 2)
                continue
            self._message(opcode, bytes(buf[start:end]), now_ms)
        if self.sock is not None:
            del buf[:pos]

    def _message(self, opcode: int, p: bytes, now_ms: float) -> None:
        if opcode == 2:
            pkt = msgpack.unpackb(p, strict_map_key=False)
            kind = pkt.get("type")
            if kind == 0:
                self._connected()
            elif kind == 4:
                self._refused(pkt.get("data"))
            elif kind == 3:
                self._ack(pkt.get("id"), (pkt.get("data") or [None])[0])
            elif kind == 2:
                data = pkt.get("data") or []
                self._event(data[0] if data else "", data[1] if len(data) > 1 else None, now_ms)
        elif opcode == 1:
            if p == b"2":
                self._send_raw(_frame(1, b"3"))
            elif p.startswith(b"42"):
                data = orjson.loads(p[2:])
                self._event(data[0], data[1] if len(data) > 1 else None, now_ms)
            elif p.startswith(b"43"):
                i = 2
                while i < len(p) and 48 <= p[i] <= 57:
                    i += 1
                self._ack(int(p[2:i]), (orjson.loads(p[i:]) or [None])[0])
            elif p.startswith(b"40"):
                self._connected()
            elif p.startswith(b"44"):
                try:
                    self._refused(orjson.loads(p[2:]) if len(p) > 2 else None)
                except ValueError:
                    self._refused(None)
            elif p.startswith(b"0"):
                self._open()
        elif opcode == 9:
            self._send_raw(_frame(10, p))
        elif opcode == 8:
            self._fail("CLOSED_BY_SERVER")

    def _open(self) -> None:
        auth = {"token": self.token}
        if self.codec == "msgpack":
            self._send_raw(_frame(2, msgpack.packb({"type": 0, "data": auth, "nsp": "/"})))
        else:
            self._send_raw(_frame(1, b"40" + orjson.dumps(auth)))
        self.state = "sio"

    def call(self, event: str, payload: dict[str, Any], done: Callable[[Any, str], None] | None = None) -> None:
        """Emit with an ack; `done(ack, code)` gets the ack (code OK / the error code / TIMEOUT)."""
        if self.sock is None:
            if done is not None:
                done(None, "NOT_CONNECTED")
            return
        self.next_ack += 1
        ack_id = self.next_ack
        if done is not None:
            self.acks[ack_id] = (done, time.perf_counter())
            self.pool.at(ACK_TIMEOUT_S, self._ack_timeout, ack_id)
        if self.codec == "msgpack":
            self._send_raw(_frame(2, msgpack.packb({"type": 2, "data": [event, payload], "nsp": "/", "id": ack_id})))
        else:
            self._send_raw(_frame(1, f"42{ack_id}".encode() + orjson.dumps([event, payload])))

    def _ack(self, ack_id: Any, data: Any) -> None:
        entry = self.acks.pop(ack_id, None)
        if entry is None:
            return
        code = "OK" if isinstance(data, dict) and data.get("ok") else (
            str(((data or {}).get("error") or {}).get("code") or "BAD_ACK") if isinstance(data, dict) else "BAD_ACK")
        entry[0](data, code)

    def _ack_timeout(self, ack_id: int) -> None:
        entry = self.acks.pop(ack_id, None)
        if entry is not None:
            entry[0](None, "TIMEOUT")

    def _tick(self, p: bytes, now_ms: float, binary: bool) -> None:
        """A sampled tick (or one that may carry our own chat line), already counted: decode it."""
        try:
            if binary:
                data = msgpack.unpackb(p, strict_map_key=False)["data"][1]
            else:
                data = orjson.loads(p[2:])[1]
        except Exception:  # noqa: BLE001 - a tick we cannot read is simply not sampled
            return
        self._tick_data(data, now_ms)
