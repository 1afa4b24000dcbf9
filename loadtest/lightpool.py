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
when the generator, not the server, is the bottleneck.

Three modules: this one is a viewer's session (joins and their retries, clock sync, ticks, chat and
hearts); loadtest/lightwire.py is its wire (frames and packets); loadtest/lightloop.py is the loop
that runs them all (epoll, timers, the outbox to gevent)."""
from __future__ import annotations

import _socket
import errno
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loadtest.lightloop import _EPOLLIN, _EPOLLOUT, LightPool, Report
from loadtest.lightwire import ACK_TIMEOUT_S, WireSocket

__all__ = ["ACK_TIMEOUT_S", "ATTEMPT_TIMEOUT_S", "JOIN_TIMEOUT_S", "LightPool", "Report", "Viewer"]

JOIN_TIMEOUT_S = 60.0  # a join (all its attempts) must end with a snapshot within this
ATTEMPT_TIMEOUT_S = 20.0  # one attempt: TCP connect -> snapshot


@dataclass
class Viewer(WireSocket):
    """One light viewer's socket and state (WireSocket is its wire). Methods run on the pool's thread only."""

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

    # ---- the session (the hooks lightwire.WireSocket calls) -------------------------------

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
