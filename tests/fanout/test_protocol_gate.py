"""One gate in front of python-socketio's dispatch: events whose name is not a string or is reserved,
and frames that do not decode, are answered (BAD_EVENT / BAD_PACKET, or FLOOD past the socket's
rate) or, when nothing can be answered, close the socket with 4002; they never reach an internal
handler, never change the socket's state and never log a traceback or an ERROR."""
from __future__ import annotations

import asyncio
import gc
import logging
import math

import aiohttp
import msgpack
import orjson
import pytest

from live.fanout.conn import PROTOCOL_CLOSE_CODE
from tests.fanout.conftest import fanout_of, wait_for
from tests.rawsock import Raw

CODECS = ("json", "msgpack")


async def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    """No record at ERROR or above and no traceback, including tasks whose exception nobody read."""
    await asyncio.sleep(0.2)
    gc.collect()
    await asyncio.sleep(0)
    bad = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, bad


def _warnings(caplog: pytest.LogCaptureFixture, eio_sid: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and eio_sid in r.getMessage()]


async def _joined(session: aiohttp.ClientSession, server, token, codec: str, user: str = "u1") -> Raw:
    raw = (await Raw.connect(session, server.url, token("viewer", "b1", user), codec=codec)).start()
    await wait_for(lambda: any(e == "snapshot" for e, _ in raw.events), what="snapshot")
    return raw


def _refused(ack: dict, code: str) -> bool:
    return ack.get("ok") is False and ack["error"]["code"] == code and bool(ack["error"]["message"])


@pytest.mark.parametrize("codec", CODECS)
async def test_event_names_that_are_not_strings_are_answered_bad_event(server, bc, token, caplog, codec) -> None:
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        raw = await _joined(session, server, token, codec)
        for data in ([{"a": 1}, {}], [["x"], {}], [1, {}], [None], [True, {}], [], {"a": 1}, "time", None):
            ack_id = raw.new_id()
            await raw.emit(data, ack_id)
            ack = await raw.ack(ack_id)
            assert _refused(ack, "BAD_EVENT"), (data, ack)
        assert (await raw.call("time", {}))["ok"]
        assert len(_warnings(caplog, raw.sock.eio_sid)) == 1  # once per socket, whatever the count
        await raw.aclose()
    await _quiet_logs(caplog)


@pytest.mark.parametrize("codec", CODECS)
async def test_reserved_event_names_never_reach_internal_handlers(server, bc, token, caplog, codec) -> None:
    caplog.set_level(logging.INFO)
    hub = server.app["node"].hub
    fan = fanout_of(server)
    async with aiohttp.ClientSession() as session:
        raw = await _joined(session, server, token, codec)
        await wait_for(lambda: fan.members(bc) == 1, what="joined")
        for name, payload in (("disconnect", None), ("disconnect", {}), ("connect", {}), ("connect", None),
                              ("*", {"a": 1}), ("*", None), ("*", "time")):
            ack = await raw.call(name, payload)
            assert _refused(ack, "BAD_EVENT"), (name, payload, ack)
            # the socket's state did not change: still joined (a `disconnect` event used to un-join it)
            assert (await raw.call("time", {}))["ok"], name
            assert fan.members(bc) == 1 and len(hub.callers(bc)) == 1
        await raw.aclose()
    await _quiet_logs(caplog)


def _mp(data: object, ack_id: int | None, **extra: object) -> bytes:
    pkt = {"type": 2, "data": data, "nsp": "/", **extra}
    if ack_id is not None:
        pkt["id"] = ack_id
    return msgpack.packb(pkt)


async def test_undecodable_frames_with_an_ack_id_are_answered_bad_packet(server, bc, token, caplog) -> None:
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        js = await _joined(session, server, token, "json", "u1")
        mp = await _joined(session, server, token, "msgpack", "u2")
        text_frames = [
            '42{id}["time",{{"x":"\\ud800"}}]',       # a lone surrogate escape: orjson refuses it
            '42{id}["time",{{"x":NaN}}]',
            '42{id}["time",{{"x":1e400}}]',
            '42{id}["time",{{',                       # cut short
            '42{id}' + "[" * 5000,                    # deeper than the decoder goes
            '49{id}["time",{{}}]',                    # no such Socket.IO packet type
        ]
        for frame in text_frames:
            ack_id = js.new_id()
            await js.text(frame.format(id=ack_id))
            ack = await js.ack(ack_id)
            assert _refused(ack, "BAD_PACKET"), (frame[:40], ack)
            await asyncio.sleep(0.06)  # this test is about shapes, not the flood limit
        binary_frames = [
            lambda i: _mp(["time", {1: 2}], i),                                # integer map key
            lambda i: _mp(["time", {"x": [{"y": {7: 3}}]}], i),                # ... deep inside
            lambda i: _mp(["time", {"x": math.nan}], i),
            lambda i: _mp(["time", {"x": math.inf}], i),
            lambda i: _mp(["time", {"x": b"\x00\x01"}], i),                    # bytes are not JSON
            lambda i: _mp(["time", {"x": msgpack.ExtType(5, b"x")}], i),
            lambda i: msgpack.packb({"type": 9, "data": ["time", {}], "nsp": "/", "id": i}),
        ]
        for make in binary_frames:
            ack_id = mp.new_id()
            await mp.binary(make(ack_id))
            ack = await mp.ack(ack_id)
            assert _refused(ack, "BAD_PACKET"), ack
            await asyncio.sleep(0.06)
        for raw in (js, mp):
            assert (await raw.call("time", {}))["ok"]
            assert len(_warnings(caplog, raw.sock.eio_sid)) == 1
            await raw.aclose()
    await _quiet_logs(caplog)


UNANSWERABLE = {
    "json without an ack id": ("text", '42["time",{'),
    "empty engine.io frame": ("text", ""),
    "not engine.io": ("text", "hello"),
    "not socket.io": ("text", "4x"),
    "ack id too long": ("text", '42' + "9" * 30 + '["time",{}]'),
    "binary attachments": ("text", '451-0["time",{"_placeholder":true,"num":0}]'),
    "msgpack garbage": ("binary", b"\xc1\xc1\xc1"),
    "msgpack not a map": ("binary", msgpack.packb([2, ["time", {}]])),
    "msgpack map without a type": ("binary", msgpack.packb({"data": ["time", {}], "nsp": "/"})),
    "msgpack ack id not a number": ("binary", msgpack.packb({"type": 2, "data": ["time", {}], "nsp": "/",
                                                             "id": {"a": 1}})),
    "msgpack integer keys without an id": ("binary", msgpack.packb({"type": 2, "data": ["time", {1: 2}], "nsp": "/"})),
}


@pytest.mark.parametrize("case", sorted(UNANSWERABLE))
async def test_frames_that_cannot_be_answered_close_the_socket_with_a_protocol_error(
        server, bc, token, caplog, case) -> None:
    caplog.set_level(logging.INFO)
    kind, frame = UNANSWERABLE[case]
    fan = fanout_of(server)
    async with aiohttp.ClientSession() as session:
        raw = await _joined(session, server, token, "msgpack" if kind == "binary" else "json")
        other = await _joined(session, server, token, "json", "u2")
        await wait_for(lambda: fan.members(bc) == 2, what="joined")
        await (raw.text(frame) if kind == "text" else raw.binary(frame))
        code, reason = await raw.wait_closed(timeout=15)
        assert code == PROTOCOL_CLOSE_CODE and reason.startswith("protocol error: "), (code, reason)
        await wait_for(lambda: fan.members(bc) == 1, what="the socket left the broadcast")
        assert (await other.call("time", {}))["ok"]  # nobody else is affected
        await other.aclose()
    await _quiet_logs(caplog)


async def test_malformed_frames_count_toward_the_flood_limit(server, bc, token, caplog) -> None:
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        raw = await _joined(session, server, token, "json")
        ids = [raw.new_id() for _ in range(80)]
        for ack_id in ids:
            await raw.text(f'42{ack_id}["time",{{')
        acks = [await raw.ack(i) for i in ids]
        codes = {a["error"]["code"] for a in acks}
        assert codes == {"BAD_PACKET", "FLOOD"}, codes
        assert all(a["error"]["retry_after"] >= 1 for a in acks if a["error"]["code"] == "FLOOD")
        # the junk used up the socket's allowance: a real command now waits its turn too
        assert (await raw.call("hearts", {"n": 1}))["error"]["code"] == "FLOOD"
        assert len(_warnings(caplog, raw.sock.eio_sid)) == 1
        await raw.aclose()
    await _quiet_logs(caplog)


@pytest.mark.parametrize("body", [b"\xff\xfe", b"\x1e\x1e", b"2", b"0", b"bAAA!"])
async def test_an_undecodable_long_polling_post_is_refused_at_once(server, bc, caplog, body) -> None:
    """Engine.IO answered these 200 with a traceback, or held the POST open until a poll came."""
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/socket.io/", params={"EIO": "4", "transport": "polling"}) as resp:
            sid = orjson.loads((await resp.text())[1:])["sid"]
        async with session.post(f"{server.url}/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid},
                                data=body, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            assert resp.status == 400
        assert sid not in server.app["sio"].eio.sockets  # the session is gone
    await _quiet_logs(caplog)


async def test_browser_msgpack_packets_with_options_and_undefined_are_accepted(server, bc, token) -> None:
    """socket.io-client + socket.io-msgpack-parser send the whole packet object (`options` too) and
    write JS `undefined` as notepack's fixext 0; both are part of normal traffic, not malformed."""
    undefined = msgpack.ExtType(0, b"\x00")
    async with aiohttp.ClientSession() as session:
        raw = await _joined(session, server, token, "msgpack")
        ack_id = raw.new_id()
        await raw.binary(msgpack.packb({"type": 2, "data": ["hearts", {"n": 2, "note": undefined}],
                                        "options": {"compress": True}, "nsp": "/", "id": ack_id}))
        assert (await raw.ack(ack_id)) == {"ok": True}
        await raw.aclose()
