"""Light viewers: thousands of Socket.IO sockets per process, on one native thread.

Locust runs on gevent; a full python-socketio client per viewer costs a greenlet set, a websocket
parser in Python and a decode of every frame, which is why one Locust process used to saturate at
a few thousand viewers and the report showed the generator's backlog as "latency". Here every
viewer socket of a process lives in one epoll loop on a real OS thread (gevent's monkey patching
is bypassed: the original `_thread`, `select.epoll` and C-level sockets), speaking Engine.IO v4 /
Socket.IO v5 by hand in either codec (see docs/protocol.md). A tick costs a recv and a frame
split; only a sample of ticks (and ticks that may carry the viewer's own chat line) is decoded to
read its server `ts` against the viewer's clock offset (synced with `time`).

Results go back to gevent through a thread-safe libev async watcher: the Locust side turns them
into Locust request events (so stats, CSV and the web UI count them) and raw samples.
The loop also measures itself (how long one pass over ready sockets took) so the run can tell
when the generator, not the server, is the bottleneck."""
from __future__ import annotations

import _socket
import base64
import collections
import errno
import heapq
import os
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import msgpack
import orjson


def _original(module: str, name: str) -> Any:
    """The unpatched object even when gevent has monkey-patched the module."""
    try:
        from gevent import monkey

        return monkey.get_original(module, name)
    except ImportError:  # pragma: no cover - gevent is installed with Locust
        return getattr(__import__(module), name)


_start_thread = _original("_thread", "start_new_thread")
_epoll = _original("select", "epoll")
_EPOLLIN, _EPOLLOUT, _EPOLLERR, _EPOLLHUP = 0x001, 0x004, 0x008, 0x010

JOIN_TIMEOUT_S = 60.0  # a join (all its attempts) must end with a snapshot within this
ATTEMPT_TIMEOUT_S = 20.0  # one attempt: TCP connect -> snapshot
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


@dataclass
class Report:
    """One result for the Locust side: a request event and, maybe, a raw sample."""

    request_type: str
    name: str
    ms: float
    code: str = "OK"
    user: str = ""
    sample: str = ""  # samples.KINDS entry to also record as a raw sample ("" = none)


@dataclass
class Viewer:
    """One light viewer's socket and state. Methods run on the pool's thread only."""

    pool: LightPool
    user_id: str
    token: str
    codec: str = "msgpack"
    on_joined: Callable[[bool, str], None] | None = None  # called on the gevent side
    state: str = "idle"
    sock: Any = None
    fd: int = -1
    buf: bytearray = field(default_factory=bytearray)
    out: bytearray = field(default_factory=bytearray)
    acks: dict[int, tuple[Callable[[Any, str], None], float]] = field(default_factory=dict)
    next_ack: int = 0
    offset_ms: float = 0.0
    join_t0: float = 0.0
    joins: int = 0
    ticks: int = 0
    partial: bool = False
    pending_chat: dict[str, float] = field(default_factory=dict)  # request_id -> sent (server ms)
    closing: bool = False
    tries: int = 0
    joining: bool = False

    # ---- connecting --------------------------------------------------------------------------

    def connect(self) -> None:
        if not self.joining:
            return
        self.closing = False
        self.state = "connecting"
        self.buf.clear()
        self.out.clear()
        s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        rc = s.connect_ex((self.pool.host, self.pool.port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            self._fail(f"CONNECT_{errno.errorcode.get(rc, rc)}")
            return
        self.sock, self.fd = s, s.fileno()
        self.pool.register(self, _EPOLLIN | _EPOLLOUT)

    def _join_deadline(self, join: int) -> None:
        if self.joins == join and self.joining:
            self.tries = 1 << 20  # no retry after the budget
            self._fail(f"JOIN_TIMEOUT_{self.state.upper()}")

    def _attempt_deadline(self, join: int, attempt: int) -> None:
        if self.joins == join and self.tries == attempt and self.joining and self.state != "closed":
            self._fail(f"JOIN_TIMEOUT_{self.state.upper()}")

    def _try(self) -> None:
        if not self.joining:
            return
        self.tries += 1
        self.pool.at(ATTEMPT_TIMEOUT_S, self._attempt_deadline, self.joins, self.tries)
        self.connect()

    def _upgrade(self) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        path = f"/socket.io/?EIO=4&transport=websocket&codec={self.codec}"
        self._send_raw((f"GET {path} HTTP/1.1\r\nHost: {self.pool.host}:{self.pool.port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.state = "http"

    def _retryable(self, code: str) -> bool:
        if code.startswith("REFUSED_"):
            return code in ("REFUSED_BUSY", "REFUSED_UNAVAILABLE")
        return not code.startswith("HTTP_4")

    def _fail(self, code: str, retry_after: Any = None) -> None:
        """A failed join attempt is retried with backoff (as a player reconnects) while the join's
        budget lasts; a lost live socket is reported as a disconnect."""
        if not self.joining and self.state != "live":
            return
        if self.joining and self._retryable(code):
            base = min(5000.0, float(retry_after or 500) * 2 ** min(self.tries, 4))
            wait_ms = base + random.random() * base
            if self._since_join() + wait_ms < (JOIN_TIMEOUT_S - 2) * 1000:
                self.close(reason="RETRY")
                self.pool.report(Report("WS", "join retry", 0.0, code, self.user_id, "join_retry"))
                self.pool.at(wait_ms / 1000, self._try)
                return
        first = self.joining
        self.joining = False
        self.close(reason=code)
        if not first:
            self.pool.report(Report("WS", "disconnected", 0.0, code, self.user_id))
        else:
            self.pool.report(Report("WS", "join" if self.joins <= 1 else "rejoin", self._since_join(), code,
                                    self.user_id, "join" if self.joins <= 1 else "rejoin"))
            if self.on_joined is not None and self.joins <= 1:
                self.pool.call_gevent(self.on_joined, False, code)

    def _since_join(self) -> float:
        return (time.perf_counter() - self.join_t0) * 1000

    # ---- I/O --------------------------------------------------------------------------------

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

    # ---- Socket.IO --------------------------------------------------------------------------

    def _open(self) -> None:
        auth = {"token": self.token}
        if self.codec == "msgpack":
            self._send_raw(_frame(2, msgpack.packb({"type": 0, "data": auth, "nsp": "/"})))
        else:
            self._send_raw(_frame(1, b"40" + orjson.dumps(auth)))
        self.state = "sio"

    def _refused(self, data: Any) -> None:
        """connect_error: BUSY/UNAVAILABLE is retried after a backoff (as the player does) while the
        join deadline allows; anything else is final."""
        detail = data.get("data") if isinstance(data, dict) and isinstance(data.get("data"), dict) else data
        code = str(detail.get("code")) if isinstance(detail, dict) and detail.get("code") else "UNKNOWN"
        retry_after = detail.get("retry_after") if isinstance(detail, dict) else None
        self._fail(f"REFUSED_{code}", retry_after)

    def _connected(self) -> None:
        if self.state == "sio":
            self.state = "snapshot"

    def _event(self, name: str, data: Any, now_ms: float) -> None:
        if name == "snapshot" and self.state == "snapshot":
            self.partial = bool(isinstance(data, dict) and data.get("partial"))
            kind = "join" if self.joins <= 1 else "rejoin"
            self.pool.report(Report("WS", kind, self._since_join(), "PARTIAL" if self.partial else "OK",
                                    self.user_id, kind))
            self.state = "sync"
            self._sync([])
        elif name == "tick" and self.state == "live" and isinstance(data, dict):
            self._tick_data(data, now_ms)

    def _sync(self, got: list[tuple[float, float]]) -> None:
        """Three `time` round trips; keep the offset of the one with the smallest round trip."""
        if len(got) >= 3:
            self.offset_ms = min(got)[1]
            self.state = "live"
            self.joining = False
            if self.on_joined is not None and self.joins <= 1:
                self.pool.call_gevent(self.on_joined, True, "PARTIAL" if self.partial else "OK")
            return
        t0 = time.time() * 1000

        def done(ack: Any, code: str) -> None:
            t1 = time.time() * 1000
            if code == "OK" and isinstance(ack, dict):
                got.append((t1 - t0, ack["now"] - (t0 + t1) / 2))
                self._sync(got)
            else:
                self._fail(f"TIME_{code}")

        self.call("time", {}, done)

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

    def _tick_data(self, data: dict[str, Any], now_ms: float) -> None:
        server_now = now_ms + self.offset_ms
        ts = data.get("ts")
        if isinstance(ts, (int, float)) and self.ticks % self.pool.tick_sample_every == 0:
            self.pool.report(Report("TICK", "tick latency", server_now - ts, "OK", self.user_id, "tick_latency"))
        if self.pending_chat:
            for msg in data.get("chat") or ():
                if isinstance(msg, dict) and msg.get("user") == self.user_id and "ts" in msg:
                    rid = msg.get("request_id") or next(iter(self.pending_chat))
                    if self.pending_chat.pop(rid, None) is not None or self.pending_chat:
                        self.pool.report(Report("CHAT", "chat latency", server_now - msg["ts"], "OK",
                                                self.user_id, "chat_latency"))
                    break
            cutoff = server_now - 5000
            for rid, sent in list(self.pending_chat.items()):
                if sent < cutoff:
                    del self.pending_chat[rid]

    # ---- actions (scheduled from gevent with pool.submit) ----------------------------------

    def chat(self, text: str) -> None:
        if self.state != "live":
            return
        rid = os.urandom(8).hex()
        self.pending_chat[rid] = time.time() * 1000 + self.offset_ms
        t0 = time.perf_counter()

        def done(_ack: Any, code: str) -> None:
            if code != "OK":
                self.pending_chat.pop(rid, None)
            if code == "CANCELLED":
                return
            self.pool.report(Report("WSC", "chat.send", (time.perf_counter() - t0) * 1000, code, self.user_id,
                                    "chat_ack"))

        self.call("chat.send", {"text": text, "request_id": rid}, done)

    def hearts(self, n: int) -> None:
        if self.state != "live":
            return
        t0 = time.perf_counter()
        def done(_ack: Any, code: str) -> None:
            if code != "CANCELLED":
                self.pool.report(Report("WSC", "hearts", (time.perf_counter() - t0) * 1000, code, self.user_id))

        self.call("hearts", {"n": n}, done)

    def drop_and_rejoin(self, after_s: float) -> None:
        """As after a node restart: the socket is gone now, the client comes back `after_s` later."""
        self.close(reason="STORM")
        self.pool.at(after_s, self._rejoin)

    def _rejoin(self) -> None:
        self.start()

    def start(self) -> None:
        """A join (or a rejoin): connect (again after a failed attempt), and fail it if no snapshot
        came within JOIN_TIMEOUT_S."""
        self.joins += 1
        self.tries = 0
        self.joining = True
        self.join_t0 = time.perf_counter()
        self.pool.at(JOIN_TIMEOUT_S, self._join_deadline, self.joins)
        self._try()

    def close(self, reason: str = "") -> None:
        self.closing = True
        if reason in ("", "STORM"):
            self.joining = False
        if self.sock is not None:
            self.pool.unregister(self)
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock, self.fd = None, -1
        self.state = "closed"
        pending, self.acks = list(self.acks.values()), {}
        for done, _t in pending:  # our own close (end of run, a storm) cancels; a lost socket fails
            done(None, "CANCELLED" if reason in ("", "STORM") else "CLOSED")


class LightPool:
    """The epoll loop of one process; everything touching a Viewer runs on its thread."""

    def __init__(self, url: str, tick_sample_every: int = 20) -> None:
        u = urlparse(url)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.tick_sample_every = max(1, tick_sample_every)
        self.ep = _epoll()
        self.by_fd: dict[int, Viewer] = {}
        self.commands: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = collections.deque()
        self.timers: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self.outbox: collections.deque[Any] = collections.deque()
        self.busy_max_ms = 0.0  # longest pass over ready sockets since the last read (loop lag)
        self.stopped = False
        self._notify: Callable[[], None] = lambda: None
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self.ep.register(self._r, _EPOLLIN)

    # called from any thread
    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self.commands.append((fn, args))
        try:
            os.write(self._w, b"x")
        except BlockingIOError:
            pass

    def start(self, notify: Callable[[], None]) -> None:
        """Run the loop on a native thread; `notify()` (thread-safe) wakes the consumer of `outbox`."""
        self._notify = notify
        _start_thread(self._run, ())

    def stop(self) -> None:
        self.stopped = True
        self.submit(lambda: None)

    def take_busy_max_ms(self) -> float:
        v, self.busy_max_ms = self.busy_max_ms, 0.0
        return v

    # called on the loop thread
    def register(self, v: Viewer, mask: int) -> None:
        self.by_fd[v.fd] = v
        self.ep.register(v.fd, mask)

    def modify(self, v: Viewer, mask: int) -> None:
        try:
            self.ep.modify(v.fd, mask)
        except OSError:
            pass

    def unregister(self, v: Viewer) -> None:
        self.by_fd.pop(v.fd, None)
        try:
            self.ep.unregister(v.fd)
        except (OSError, ValueError):
            pass

    def at(self, delay_s: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay_s, self._seq, fn, args))

    def report(self, r: Report) -> None:
        self.outbox.append(r)

    def call_gevent(self, fn: Callable[..., None], *args: Any) -> None:
        self.outbox.append((fn, args))

    def _run(self) -> None:
        last_notify = 0.0
        while not self.stopped:
            timeout = 0.05
            if self.timers:
                timeout = max(0.0, min(timeout, self.timers[0][0] - time.monotonic()))
            events = self.ep.poll(timeout, 4096)
            t_start = time.perf_counter()
            now_ms = time.time() * 1000
            for fd, ev in events:
                if fd == self._r:
                    try:
                        while os.read(self._r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                v = self.by_fd.get(fd)
                if v is None:
                    continue
                try:
                    if ev & _EPOLLOUT:
                        v.writable()
                    if ev & (_EPOLLIN | _EPOLLERR | _EPOLLHUP) and v.sock is not None:
                        v.readable(now_ms)
                except Exception as exc:  # noqa: BLE001 - one broken socket must not stop the others
                    v._fail(f"CLIENT_{type(exc).__name__}")
            while self.commands:
                fn, args = self.commands.popleft()
                try:
                    fn(*args)
                except Exception:  # noqa: BLE001
                    pass
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _due, _seq, fn, args = heapq.heappop(self.timers)
                try:
                    fn(*args)
                except Exception:  # noqa: BLE001
                    pass
            busy = (time.perf_counter() - t_start) * 1000
            if busy > self.busy_max_ms:
                self.busy_max_ms = busy
            if self.outbox and (now - last_notify > 0.05 or len(self.outbox) > 2000):
                last_notify = now
                self._notify()
        for v in list(self.by_fd.values()):
            v.close()
