"""The Socket.IO server the fan-out engine needs: stock python-socketio for the protocol (handshake,
namespaces, events, acks), with four changes:

  * websocket transport served by our own loop (`serve_websocket`): permessage-deflate off, and a
    per-socket `Conn` writer that writes frames straight to the transport, control traffic first;
  * a codec per socket: msgpack (binary frames) or JSON (text frames), taken from the connect query
    `codec=msgpack|json` or else from the client's first Socket.IO packet (a binary CONNECT is
    msgpack); incoming packets of both kinds parse, and every packet to a socket (CONNECT, acks,
    private events) uses that socket's codec;
  * `emit()` without a callback encodes once per codec and writes without a task per recipient;
  * one gate in front of python-socketio's dispatch for everything a client sends: packets are
    decoded strictly (live/fanout/packets.py), an event must be `[name: str, ...]` with a name no
    internal handler owns (connect, disconnect, `*`...); what fails is answered with an error ack
    (`BAD_PACKET`, `BAD_EVENT`, or `FLOOD` past the socket's rate, which these count toward) when
    it carries an ack id, else dropped (a bad event) or the socket is closed with code 4002
    `protocol error: <why>` (a frame that cannot be answered). Logged once per socket as a
    warning, never with a traceback.
Long-polling still works (Engine.IO's own queue) and upgrades to websocket; it is meant for
stragglers, not for mass audiences."""
from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import socketio
from aiohttp import WSMsgType
from aiohttp.web import WebSocketResponse
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from socketio import packet as sio_packet
from socketio.msgpack_packet import MsgPackPacket

from domain import Code, DomainError
from live.fanout import metrics
from live.fanout.conn import Bounds, Conn
from live.fanout.frames import CODECS, JSON, MSGPACK, Encoded
from live.fanout.packets import Malformed, decode

log = logging.getLogger("hawker.fanout")


class DirectWebSocket:
    """Engine.IO async driver hook: replaces engineio.async_drivers.aiohttp.WebSocket."""

    def __init__(self, handler: Any, server: Any) -> None:
        self.sock = handler.__self__  # the engineio AsyncSocket whose _websocket_handler this is
        self.server = server

    async def __call__(self, environ: dict) -> WebSocketResponse:
        request = environ["aiohttp.request"]
        ws = WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await ws.prepare(request)
        await serve_websocket(self.server, self.sock, ws)
        return ws


async def _recv(ws: WebSocketResponse) -> Any:
    msg = await ws.receive()
    if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
        return msg.data
    return None


async def serve_websocket(server: Any, sock: Any, ws: WebSocketResponse) -> None:
    """Engine.IO over one websocket: the reader loop here, the writer in Conn.run."""
    conn: Conn | None = server.conns.get(sock.sid)
    if conn is None:  # not created by FanoutServer (should not happen): behave as a JSON socket
        conn = server.conns[sock.sid] = Conn(sock.sid, sock, None, Bounds())
    if sock.connected:  # an upgrade from long-polling: the probe dance
        sock.upgrading = True
        p = await _recv(ws)
        if p is None or eio_packet.Packet(encoded_packet=p).packet_type != eio_packet.PING:
            sock.upgrading = False
            return
        await ws.send_str("3probe")
        await sock.queue.put(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
        p = await _recv(ws)
        if p is None or eio_packet.Packet(encoded_packet=p).packet_type != eio_packet.UPGRADE:
            sock.upgrading = False
            return
        sock.upgraded = True
        sock.upgrading = False
    else:
        sock.connected = True
        sock.upgraded = True
    conn.ws = ws
    transport = ws._writer.transport if ws._writer is not None else None  # noqa: SLF001 - aiohttp keeps the writer's transport private; we write frames to it directly
    if transport is None:
        return
    conn.attach(transport)
    conn.writer = asyncio.ensure_future(conn.run())
    try:
        while True:
            p = await _recv(ws)
            if p is None:
                break
            if conn.close_reason is not None:  # closing: read on (the peer's close frame), act on nothing
                continue
            try:
                pkt = eio_packet.Packet(encoded_packet=p)
            except Exception:  # noqa: BLE001 - empty, non-numeric type, bad base64: not Engine.IO
                server.bad_frame(conn, "undecodable Engine.IO packet")
                continue
            try:
                await sock.receive(pkt)
            except eio_exceptions.UnknownPacketError:
                pass
            except eio_exceptions.SocketIsClosedError:
                break
    finally:
        conn.closing = True
        conn.wake.set()
        sock.queue.put_nowait(None)
        try:
            await asyncio.wait_for(conn.writer, timeout=2)
        except Exception:  # noqa: BLE001 - a writer that will not finish in time is cancelled
            conn.writer.cancel()
        await sock.close(wait=False, abort=True, reason=conn.close_reason or server.reason.TRANSPORT_CLOSE)


_eio_log = logging.getLogger("engineio.server")
_eio_logged: set[str] = set()


def _log_client_error(message: str, message_key: str) -> None:
    """Engine.IO's "log at ERROR the first time" for requests a client got wrong (bad transport,
    unknown session, unsupported protocol version): a client's mistake is a warning, not a server
    error; like Engine.IO, only the first of a kind, later ones at INFO, each line bounded."""
    level = logging.INFO if message_key in _eio_logged else logging.WARNING
    _eio_logged.add(message_key)
    _eio_log.log(level, "%s", message[:200])


def _codec_from(environ: dict) -> str | None:
    qs = parse_qs(environ.get("QUERY_STRING", "") or "")
    codec = (qs.get("codec") or [None])[0]
    return codec if codec in CODECS else None


class FanoutServer(socketio.AsyncServer):
    """`socketio.AsyncServer` for the fan-out engine (async_mode aiohttp). `conns` maps Engine.IO
    sids to their Conn; `bounds` are the per-socket limits."""

    def __init__(self, *, bounds: Bounds | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("async_mode", "aiohttp")
        super().__init__(**kwargs)
        self.bounds = bounds or Bounds()
        self.conns: dict[str, Conn] = {}
        # Set by the hub: charge(sid) -> 0 if the socket is within its rate, else ms to wait. Refused
        # events and malformed frames are charged like commands, so junk counts toward the flood limit.
        self.charge: Callable[[str], int] | None = None
        self.eio.conns = self.conns
        self.eio.bad_frame = self.bad_frame  # serve_websocket's Engine.IO errors
        self.eio._log_error_once = _log_client_error
        self.eio._async = dict(self.eio._async, websocket=DirectWebSocket)  # noqa: SLF001 - python-engineio has no public hook for its websocket class

    def conn(self, sid: str, namespace: str = "/") -> Conn | None:
        """The Conn of a Socket.IO sid."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        return self.conns.get(eio_sid) if eio_sid else None

    # ---- engine.io events ---------------------------------------------------------------------

    async def _handle_eio_connect(self, eio_sid: str, environ: dict) -> Any:
        sock = self.eio.sockets.get(eio_sid)
        if sock is not None:
            conn = self.conns[eio_sid] = Conn(eio_sid, sock, _codec_from(environ), self.bounds)
            sock.handle_post_request = functools.partial(self._handle_post, conn, sock.handle_post_request)
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_post(self, conn: Conn, stock: Callable[[dict], Awaitable[None]], environ: dict) -> None:
        """A long-polling POST. One that cannot be decoded (bad UTF-8, bad packets, a packet type a
        client never sends) closes the socket with a protocol error and answers 400, instead of a
        traceback and 200. The socket is closed here, without waiting: Engine.IO's own disconnect
        would wait for a poll that drains its queue, and hold the request open until then."""
        try:
            await stock(environ)
        except (eio_exceptions.EngineIOError, ValueError, TypeError, IndexError) as exc:
            # UnicodeDecodeError and binascii.Error are ValueErrors
            self.bad_frame(conn, "undecodable Engine.IO payload")
            await conn.sock.close(wait=False, abort=True, reason=self.reason.TRANSPORT_ERROR)
            if isinstance(exc, eio_exceptions.EngineIOError):
                raise
            raise eio_exceptions.EngineIOError() from None

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            conn = self.conns.pop(eio_sid, None)
            if conn is not None:
                conn.closing = True

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """Every Socket.IO packet a client sends: decoded strictly, then the stock handlers."""
        conn = self.conns.get(eio_sid)
        if conn is not None and conn.codec is None:
            conn.codec = MSGPACK if isinstance(data, (bytes, bytearray)) else JSON
        try:
            pkt = decode(data)
        except Malformed as bad:
            await self._malformed(eio_sid, conn, bad)
            return
        t = pkt.packet_type
        if t == sio_packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif t == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif t == sio_packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        else:  # ACK: decode() lets no other type through
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data if isinstance(pkt.data, list) else [])

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        """The gate: only `[name, ...]` with a string name that no internal handler owns reaches
        python-socketio's dispatch (and from there the hub's catch-all)."""
        namespace = namespace or "/"
        why = self._event_problem(namespace, data)
        if why is None:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            return  # as stock python-socketio: events before CONNECT are ignored
        self.bad_frame(self.conns.get(eio_sid), why, kind="bad_event")
        await self._refuse(eio_sid, sid, namespace, id, Code.BAD_EVENT, why)

    def _event_problem(self, namespace: str, data: Any) -> str | None:
        if not isinstance(data, list) or not data:
            return "an event is a list [name, payload]"
        name = data[0]
        if not isinstance(name, str):
            return "the event name must be a string"
        if name in self.reserved_events or name == "*" or name in self.handlers.get(namespace, {}) \
                or name in self.handlers.get("*", {}):
            return "that event name is reserved"
        return None

    async def _malformed(self, eio_sid: str, conn: Conn | None, bad: Malformed) -> None:
        """Answer a malformed packet if it can be (its ack id and a joined namespace), else close."""
        sid = self.manager.sid_from_eio_sid(eio_sid, bad.namespace)
        if bad.ack_id is None or sid is None or not self.manager.is_connected(sid, bad.namespace):
            self.bad_frame(conn, bad.why)
            return
        self.bad_frame(conn, bad.why, close=False)
        await self._refuse(eio_sid, sid, bad.namespace, bad.ack_id, Code.BAD_PACKET, bad.why)

    def bad_frame(self, conn: Conn | None, why: str, *, kind: str = "malformed", close: bool = True) -> None:
        """Count a refused frame, warn once per socket (no traceback, no client data) and, unless it
        was answered, close the socket with a protocol error."""
        metrics.BAD_FRAMES.labels(kind).inc()
        if conn is None:
            return
        if not conn.warned:
            conn.warned = True
            log.warning("socket %s sent a refused frame (%s); further ones are not logged", conn.eio_sid, why)
        if close and kind == "malformed":
            conn.protocol_error(why)

    async def _refuse(self, eio_sid: str, sid: str, namespace: str, id: int | None, code: Code, message: str) -> None:
        wait_ms = self.charge(sid) if self.charge is not None else 0
        if id is None:
            return
        refusal = (DomainError(Code.FLOOD, "too many events; slow down", retry_after=wait_ms) if wait_ms
                   else DomainError(code, message))
        await self._send_packet(eio_sid, self.packet_class(sio_packet.ACK, namespace=namespace, id=id,
                                                          data=[{"ok": False, "error": refusal.body()}]))

    # ---- sending ------------------------------------------------------------------------------

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        conn = self.conns.get(eio_sid)
        if conn is not None and conn.codec == MSGPACK:
            t = pkt.packet_type
            t = sio_packet.EVENT if t == sio_packet.BINARY_EVENT else sio_packet.ACK if t == sio_packet.BINARY_ACK else t
            mp = MsgPackPacket(t, data=pkt.data, namespace=pkt.namespace or "/", id=pkt.id)
            await self.eio.send(eio_sid, mp.encode())
            return
        await super()._send_packet(eio_sid, pkt)

    async def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: str | None = None, callback: Any = None, ignore_queue: bool = False) -> None:
        """Like socketio's emit; without a callback: encoded once per codec, no task per recipient."""
        namespace = namespace or "/"
        if callback is not None or namespace != "/" or type(self.manager) is not socketio.AsyncManager:
            await super().emit(event, data, to=to, room=room, skip_sid=skip_sid, namespace=namespace,
                               callback=callback, ignore_queue=ignore_queue)
            return
        target = to or room
        if namespace not in self.manager.rooms:
            return
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        enc = Encoded(event, *args)
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        for sid, eio_sid in self.manager.get_participants(namespace, target):
            if sid in skip:
                continue
            conn = self.conns.get(eio_sid)
            if conn is not None:
                conn.send_ctrl(enc.frame(conn.out_codec))
