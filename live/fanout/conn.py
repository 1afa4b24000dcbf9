"""One socket's writer: frames go straight to the aiohttp transport, control traffic first.

Two lanes per socket:
  * control: Engine.IO packets (pings, the OPEN/CLOSE packets) and Socket.IO packets addressed to
    this socket (CONNECT, acks, the snapshot, private emits). Never dropped, always written before
    queued data, so a ping never waits behind a broadcast backlog. Bounded in bytes all the same:
    past `Bounds.max_queued_bytes` of replies the peer has not taken (a socket that sends events
    but never reads), the socket is closed with code 4001 `slow consumer: reply backlog`.
  * data: broadcast frames from the fan-out engine. Written synchronously while the transport's
    buffer is below `Bounds.high_water`; past it they wait in a bounded per-socket queue. When that
    queue passes `Bounds.max_queued_bytes`, coalescible frames (ticks) are dropped oldest first; past
    twice that the socket is closed with websocket close code 4001 and a reason.
What the peer has not taken is measured where it really is: each websocket's kernel send buffer is
set small (`Bounds.sndbuf`), so a peer that stops reading fills our transport's buffer within
about that many bytes instead of hiding megabytes in an auto-tuned kernel buffer. A socket with
anything waiting (queued data or bytes in the transport's buffer) for `Bounds.stall_s` without the
backlog ever clearing is closed (`no progress for N s`).
No task per message: the fan-out loop calls `push()` for every socket; one writer task per socket
only drains backlogs and control packets."""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engineio import packet as eio_packet

from live.fanout import metrics
from live.fanout.frames import JSON, OP_BINARY, OP_TEXT, Frame, ws_frame

log = logging.getLogger("hawker.fanout")

SLOW_CLOSE_CODE = 4001
PROTOCOL_CLOSE_CODE = 4002  # a frame that cannot be decoded and answered (live/fanout/packets.py)

# Instrumentation for tests and benchmarks: called as tap(conn, data) for every write of a frame.
tap: Callable[[Conn, bytes], None] | None = None


@dataclass(frozen=True)
class Bounds:
    """Per-socket limits (see README "Fan-out settings")."""

    high_water: int = 64 * 1024          # transport buffer above which data frames wait in our queue
    max_queued_bytes: int = 512 * 1024   # queued data past which ticks are dropped, oldest first
    stall_s: float = 10.0                # data waiting this long without the queue emptying -> close
    close_grace_s: float = 5.0           # after the close frame, abort the TCP connection
    sndbuf: int = 64 * 1024              # kernel send buffer per websocket (SO_SNDBUF; Linux doubles it)

    @property
    def max_reply_bytes(self) -> int:
        """Control bytes (acks, snapshot, pings) a socket may leave untaken before it is closed."""
        return self.max_queued_bytes + self.high_water


def _packet_bytes(item: Any) -> int:
    """About how many bytes an Engine.IO packet takes on the wire (exact for str/bytes payloads)."""
    data = getattr(item, "data", None)
    return len(data) + 1 if isinstance(data, (str, bytes, bytearray)) else 64


def _ends_writer(item: Any) -> bool:
    """The writer's stop signals: None, or Engine.IO's CLOSE packet."""
    return item is None or getattr(item, "packet_type", None) == eio_packet.CLOSE


class CtrlQueue(asyncio.Queue[Any]):
    """Engine.IO's per-socket packet queue, which also wakes our writer and counts its bytes
    (`bytes`): on long-polling everything for the socket waits here, on websocket only until the
    writer runs."""

    def __init__(self, conn: Conn) -> None:
        super().__init__()
        self._conn = conn
        self.bytes = 0

    def _put(self, item: Any) -> None:
        super()._put(item)
        self.bytes += _packet_bytes(item)

    def _get(self) -> Any:
        item = super()._get()
        self.bytes -= _packet_bytes(item)
        return item

    def put_nowait(self, item: Any) -> None:
        conn = self._conn
        if conn.writer_done:  # nobody will write it: do not leave Engine.IO's close() joining forever
            return
        if conn.close_reason is not None and conn.transport is not None and not _ends_writer(item):
            return  # closed on websocket: the writer would drop it anyway (only the close frame goes)
        super().put_nowait(item)
        conn.wake.set()
        # Bounded on put, not only on write: a busy loop can read hundreds of events (each with a
        # reply) before the writer task runs, and they all wait here meanwhile.
        conn.check_replies()


class Conn:
    __slots__ = ("eio_sid", "sock", "codec", "bounds", "ws", "transport", "queue", "queued", "wake",
                 "closing", "stalled_since", "writer", "dropped", "close_reason", "writer_done", "warned",
                 "__weakref__")

    def __init__(self, eio_sid: str, sock: Any, codec: str | None, bounds: Bounds) -> None:
        self.eio_sid = eio_sid
        self.sock = sock                # engineio AsyncSocket
        self.codec = codec              # "msgpack" | "json" | None until the first Socket.IO packet
        self.bounds = bounds
        self.ws: Any = None             # aiohttp WebSocketResponse once on websocket
        self.transport: Any = None
        self.queue: deque[tuple[bytes, bool]] = deque()
        self.queued = 0
        self.wake = asyncio.Event()
        self.closing = False
        self.stalled_since: float | None = None
        self.writer: asyncio.Task | None = None
        self.dropped = 0
        self.close_reason: str | None = None
        self.writer_done = False
        self.warned = False             # a malformed frame was logged for this socket (once per socket)
        old = sock.queue
        sock.queue = CtrlQueue(self)
        while not old.empty():  # the OPEN packet is already there
            sock.queue.put_nowait(old.get_nowait())
            old.task_done()

    @property
    def out_codec(self) -> str:
        return self.codec or JSON

    def attach(self, transport: Any) -> None:
        """Serve this socket on a websocket transport: from now on frames are written to it directly.
        Its kernel send buffer is made small so that what a peer has not taken shows up in the
        transport's own buffer, where the bounds and the stall rule see it."""
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and self.bounds.sndbuf:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.bounds.sndbuf)
            except OSError:  # not a TCP socket (a test transport): nothing to shrink
                pass

    # ---- writing ------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if tap is not None:
            tap(self, data)
        self.transport.write(data)

    def push(self, frame: Frame, coalescible: bool) -> None:
        """Hand one broadcast frame to this socket (never blocks, never creates a task)."""
        tr = self.transport
        if tr is None:  # still on long-polling: Engine.IO's own queue
            if not self.closing and not self.sock.closed:
                self.sock.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, frame.eio))
            return
        if self.closing:
            return
        if not self.queue and tr.get_write_buffer_size() < self.bounds.high_water:
            if not tr.is_closing():
                self._write(frame.ws)
                if self.stalled_since is None and tr.get_write_buffer_size():
                    self._backed_up()
            return
        data = frame.ws
        if self.stalled_since is None:
            self._backed_up()
        self.queue.append((data, coalescible))
        self.queued += len(data)
        if self.queued > self.bounds.max_queued_bytes:
            self._shed()

    def _backed_up(self) -> None:
        """Something waits for the peer: start the stall clock and let the writer watch it."""
        self.stalled_since = time.monotonic()
        self.wake.set()

    def send_ctrl(self, frame: Frame) -> None:
        """A Socket.IO packet for this socket only (acks, snapshot): control lane."""
        if self.transport is None or self.sock.queue.qsize():
            self.sock.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, frame.eio))
        elif not self.closing and not self.transport.is_closing():
            self._write(frame.ws)
            self.check_replies()

    def check_replies(self) -> None:
        """Close the socket if more control bytes wait for it than `Bounds.max_reply_bytes` (what
        the transport holds beyond `high_water` can only be control traffic: data waits in our queue)."""
        if self.close_reason is not None:
            return
        tr = self.transport
        held = self.sock.queue.bytes + (tr.get_write_buffer_size() if tr is not None else self.queued)
        if held > self.bounds.max_reply_bytes:
            self.kill("reply backlog" if tr is not None else "buffer full")
        elif tr is not None and self.stalled_since is None and tr.get_write_buffer_size():
            self._backed_up()

    def _shed(self) -> None:
        limit = self.bounds.max_queued_bytes
        kept: deque[tuple[bytes, bool]] = deque()
        dropped = 0
        for item in self.queue:
            if item[1] and self.queued > limit:
                self.queued -= len(item[0])
                dropped += 1
            else:
                kept.append(item)
        self.queue = kept
        if dropped:
            self.dropped += dropped
            metrics.DROPPED.inc(dropped)
        if self.queued > 2 * limit:
            self.kill("buffer full")

    def _write_ctrl(self, pkt: Any) -> None:
        if isinstance(pkt, eio_packet.Packet):
            enc = pkt.encode()
            data = ws_frame(enc, OP_BINARY) if isinstance(enc, bytes) else ws_frame(enc.encode(), OP_TEXT)
        else:
            data = pkt
        if self.close_reason is None and not self.transport.is_closing():  # closed: only the close frame goes
            self._write(data)
            self.check_replies()

    async def run(self) -> None:
        """The writer task: control packets first, then queued data while the transport has room."""
        ctrl = self.sock.queue
        loop = asyncio.get_running_loop()
        hw = self.bounds.high_water
        try:
            while True:
                while ctrl.qsize():
                    pkt = ctrl.get_nowait()
                    ctrl.task_done()
                    if pkt is None:
                        return
                    self._write_ctrl(pkt)
                    if getattr(pkt, "packet_type", None) == eio_packet.CLOSE:
                        return
                tr = self.transport
                q = self.queue
                while q and not self.closing and not tr.is_closing() and tr.get_write_buffer_size() < hw:
                    data, _ = q.popleft()
                    self.queued -= len(data)
                    self._write(data)
                backlog = bool(q) or tr.get_write_buffer_size() > 0  # the peer has not taken everything
                if not backlog:
                    self.stalled_since = None
                elif self.stalled_since is None:
                    self.stalled_since = time.monotonic()
                if ctrl.qsize():
                    continue
                self.wake.clear()
                if backlog and not self.closing:
                    if time.monotonic() - self.stalled_since > self.bounds.stall_s:  # type: ignore[operator]  # stalled_since is set whenever backlog is
                        self.kill(f"no progress for {self.bounds.stall_s:g} s")
                        continue
                    handle = loop.call_later(0.02, self.wake.set)  # poll for the transport to drain
                    await self.wake.wait()
                    handle.cancel()
                else:
                    await self.wake.wait()
        except Exception:  # noqa: BLE001 - a broken transport ends this socket only
            log.debug("writer of %s failed", self.eio_sid, exc_info=True)
        finally:
            self.closing = True
            self.writer_done = True
            while ctrl.qsize():  # whatever is left will never be written: release Engine.IO's join()
                ctrl.get_nowait()
                ctrl.task_done()
            if self.ws is not None and self.close_reason is None:
                try:
                    await self.ws.close()
                except Exception:  # noqa: BLE001 - the socket may be gone already; the writer ends either way
                    pass

    # ---- closing ------------------------------------------------------------------------------

    def kill(self, reason: str) -> None:
        """Close a socket that cannot keep up: websocket close 4001 with `slow consumer: <reason>`."""
        if self.close_reason is not None:
            return
        metrics.SLOW_CLOSED.labels(reason.split(" ")[0]).inc()
        self._close(SLOW_CLOSE_CODE, f"slow consumer: {reason}")

    def protocol_error(self, why: str) -> None:
        """Close a socket that sent a frame we can neither decode nor answer: websocket close 4002
        with `protocol error: <why>` (`why` is one of our fixed phrases, never client data)."""
        if self.close_reason is not None:
            return
        metrics.PROTOCOL_CLOSED.inc()
        self._close(PROTOCOL_CLOSE_CODE, f"protocol error: {why}")

    def _close(self, code: int, reason: str) -> None:
        self.closing = True
        self.close_reason = reason
        if self.queue:
            dropped = sum(1 for _, c in self.queue if c)
            self.dropped += dropped
            metrics.DROPPED.inc(dropped)
        self.queue.clear()
        self.queued = 0
        log.info("closing socket %s: %s", self.eio_sid, reason)
        asyncio.ensure_future(self._close_with(code))

    async def _close_with(self, code: int) -> None:
        loop = asyncio.get_running_loop()
        tr = self.transport
        if tr is not None:
            loop.call_later(self.bounds.close_grace_s, tr.abort)
        try:
            await self.sock.close(wait=False, abort=True, reason=self.close_reason)
        except Exception:  # noqa: BLE001 - a failed close is logged; the transport is aborted after the grace anyway
            log.debug("close of %s failed", self.eio_sid, exc_info=True)
        self.wake.set()
        if self.ws is not None:
            try:
                await self.ws.close(code=code, message=(self.close_reason or "").encode()[:120])
            except Exception:  # noqa: BLE001 - the socket may be gone already: closing is best effort
                pass
