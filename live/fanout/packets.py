"""Decoding what a client sends, strictly and without tracebacks.

Every Socket.IO packet a client sends, text (JSON) or binary (msgpack), goes through `decode()`
before python-socketio sees it. A frame is either a well-formed packet whose data is plain JSON
(objects with string keys, finite numbers, no bytes or extension types, in both codecs alike), or
`Malformed` with a fixed, client-independent reason and, when one can still be read, the ack id
and namespace, so the server can answer it (`BAD_PACKET`) instead of dropping it. What cannot be
answered closes the socket with a protocol error (see FanoutServer). Binary attachments
(BINARY_EVENT / BINARY_ACK) are not part of Hawker's protocol: the msgpack codec carries what a
client needs, so they are refused rather than buffered."""
from __future__ import annotations

import math
import re
from typing import Any

import msgpack
import orjson
from socketio import packet as sio_packet
from socketio.msgpack_packet import MsgPackPacket

MAX_ACK_ID = 2**53 - 1  # what a JavaScript client can count to
_TYPES = (sio_packet.CONNECT, sio_packet.DISCONNECT, sio_packet.EVENT, sio_packet.ACK)
# type, optional attachments "<n>-", optional "/namespace,", optional ack id: enough to answer a bad packet
_HEADER = re.compile(r"([0-9])(?:[0-9]{1,10}-)?(?:(/[^,]{0,200}),)?([0-9]{1,20})?", re.ASCII)
_UNDEFINED = msgpack.ExtType(0, b"\x00")  # how notepack.io (socket.io-msgpack-parser) writes JS `undefined`


class Malformed(Exception):
    """A frame that is not a packet we accept. `ack_id` (None if unknown) lets the server answer."""

    def __init__(self, why: str, ack_id: int | None = None, namespace: str = "/") -> None:
        super().__init__(why)
        self.why = why
        self.ack_id = ack_id
        self.namespace = namespace


def _ack_id(value: Any) -> int | None:
    """The ack id if it is one a client can match (a non-negative integer a JS number holds)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ACK_ID:
        return value
    return None


def _namespace(value: Any) -> str | None:
    if value is None:
        return "/"
    if isinstance(value, str) and value.startswith("/") and len(value) <= 200:
        return value.split("?", 1)[0] or "/"
    return None


def plain_json_problem(data: Any) -> str | None:
    """None if `data` is what JSON can carry (str keys, finite numbers, no bytes), else why not.
    Iterative: depth is bounded by the decoder, not by Python's recursion limit."""
    stack = [data]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, (bool, str)):
            continue
        if isinstance(item, int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return "numbers must be finite"
            continue
        if isinstance(item, list):
            stack.extend(item)
            continue
        if isinstance(item, dict):
            for key, value in item.items():
                if not isinstance(key, str):
                    return "object keys must be strings"
                stack.append(value)
            continue
        return "only JSON values are accepted (no binary or extension types)"
    return None


def decode(data: str | bytes | bytearray) -> sio_packet.Packet:
    """One Socket.IO packet from an Engine.IO MESSAGE payload, or raise Malformed."""
    if isinstance(data, (bytes, bytearray)):
        return _decode_msgpack(bytes(data))
    if isinstance(data, str):
        return _decode_text(data)
    raise Malformed("not a Socket.IO packet")


def _decode_text(data: str) -> sio_packet.Packet:
    head = _HEADER.match(data)
    ack_id = _ack_id(int(head.group(3))) if head and head.group(3) else None
    namespace = (_namespace(head.group(2)) if head else None) or "/"
    try:
        pkt = sio_packet.Packet(encoded_packet=data)
    except (ValueError, TypeError, IndexError, RecursionError) as exc:  # orjson.JSONDecodeError is a ValueError
        why = "undecodable JSON" if isinstance(exc, orjson.JSONDecodeError) else "undecodable Socket.IO packet"
        raise Malformed(why, ack_id, namespace) from None
    return _checked(pkt, pkt.packet_type, pkt.namespace, pkt.id, pkt.data, text=True)


def _decode_msgpack(data: bytes) -> sio_packet.Packet:
    try:
        obj = msgpack.unpackb(data, strict_map_key=True, ext_hook=_ext)
    except Exception:  # noqa: BLE001 - msgpack raises many kinds (ValueError, StackError, ExtraData...)
        raise Malformed("undecodable msgpack", *_loose_address(data)) from None
    if not isinstance(obj, dict) or "type" not in obj:  # other keys (socket.io-client's `options`) are ignored
        raise Malformed("a msgpack packet is a map {type, data, nsp, id}")
    return _checked(None, obj.get("type"), obj.get("nsp"), obj.get("id"), obj.get("data"), text=False)


def _ext(code: int, data: bytes) -> Any:
    """JavaScript's `undefined` (notepack.io's fixext 0) reads as null, as JSON would have it;
    any other extension type stays an ExtType, which the plain-JSON check refuses."""
    ext = msgpack.ExtType(code, data)
    return None if ext == _UNDEFINED else ext


def _loose_address(data: bytes) -> tuple[int | None, str]:
    """(ack id, namespace) of a msgpack packet that failed strict decoding, if a lax decode (any map
    keys, strings left as bytes so bad UTF-8 does not matter) still finds them."""
    try:
        obj = msgpack.unpackb(data, strict_map_key=False, raw=True)
    except Exception:  # noqa: BLE001 - bytes that even a lax decode refuses: no ack id to answer
        return None, "/"
    if not isinstance(obj, dict):
        return None, "/"
    nsp = obj.get(b"nsp")
    try:
        namespace = _namespace(nsp.decode() if isinstance(nsp, bytes) else nsp) or "/"
    except UnicodeDecodeError:
        namespace = "/"
    return _ack_id(obj.get(b"id")), namespace


def _checked(pkt: sio_packet.Packet | None, ptype: Any, nsp: Any, pid: Any, pdata: Any, *, text: bool) -> Any:
    namespace = _namespace(nsp)
    if namespace is None:
        raise Malformed("bad namespace")
    ack_id = _ack_id(pid)
    if pid is not None and ack_id is None:
        raise Malformed("bad ack id", None, namespace)
    if ptype in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
        raise Malformed("binary attachments are not supported", None, namespace)
    if type(ptype) is not int or ptype not in _TYPES:
        raise Malformed("unknown Socket.IO packet type", ack_id, namespace)
    why = plain_json_problem(pdata)
    if why is not None:
        raise Malformed(why, ack_id, namespace)
    if not text:
        return MsgPackPacket(ptype, data=pdata, namespace=namespace, id=ack_id)
    assert pkt is not None
    pkt.namespace = namespace
    return pkt
