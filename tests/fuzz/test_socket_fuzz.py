"""Fuzz every client event the hub registers (read from its registry at test time, so a new event
is covered without touching this file), as viewer and as host, over both codecs, with hostile
payloads and mangled frames. For every frame:
  * a well-formed frame is acked, and a mangled one is acked or closes the socket with 4002;
  * an ack is `{"ok": true, ...}` or an error with a code, never `INTERNAL`;
  * a refused command leaves every lot's stock levels as they were, and every lot's audit holds;
and over the whole run the server logs nothing at ERROR and no traceback."""
from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from live.fanout.conn import PROTOCOL_CLOSE_CODE
from shop.broadcasts import BroadcastStore
from tests.fuzz.harness import EXAMPLES, Bridge, LogTrap, drive, fuzz_settings
from tests.fuzz.strategies import Frame, encode, frames
from tests.rawsock import Raw

MESSAGE_TOO_BIG = 1009  # RFC 6455: a frame over HAWKER_MAX_MESSAGE_BYTES is not read at all
ROLES = ("viewer", "host")
CODECS = ("json", "msgpack")
PRODUCTS = [{"id": "p1", "title": "Linen shirt", "price": 12900, "currency": "KRW"},
            {"id": "p2", "title": "Straw hat", "price": 4500, "currency": "KRW"}]


@dataclass
class Run:
    """The fuzz run's state: one socket per (role, codec), the lots to audit, what was driven."""

    session: aiohttp.ClientSession
    url: str
    tokens: dict[str, str]
    hub: Any
    inv: Any
    max_message_bytes: int
    sockets: dict[tuple[str, str], Raw] = field(default_factory=dict)
    lots: list[str] = field(default_factory=list)
    driven: set[tuple[str, str, str]] = field(default_factory=set)
    codes: dict[str, int] = field(default_factory=dict)
    closes: int = 0
    ids: Any = field(default_factory=lambda: itertools.count(1))

    async def socket(self, role: str, codec: str) -> Raw:
        raw = self.sockets.get((role, codec))
        if raw is None or raw.closed.is_set():
            raw = (await Raw.connect(self.session, self.url, self.tokens[role], codec=codec, record=False)).start()
            self.sockets[(role, codec)] = raw
        return raw

    async def levels(self) -> dict[str, Any]:
        inv = self.inv
        return {lot: await inv.snapshot(lot) for lot in self.lots}

    async def audit(self) -> None:
        inv = self.inv
        for lot in self.lots:
            report = await inv.audit(lot)
            assert report.ok, (lot, report.problems)

    async def revive(self) -> None:
        """A fuzzed `broadcast.end` may have ended the show: start it again so later events get past
        BAD_STATE (the end hooks closed its sales; those lots stay audited)."""
        bc = await self.hub.broadcasts.get("b1")
        if bc is not None and bc.state == "ended":
            await self.hub.broadcasts.transition("b1", "live", ("ended",))

    async def send(self, role: str, codec: str, frame: Frame) -> None:
        """One frame and its checks."""
        size = len(frame.data.encode() if isinstance(frame.data, str) else frame.data)
        too_big = size > self.max_message_bytes  # the websocket layer refuses to read it: close 1009
        raw = await self.socket(role, codec)
        self.driven.add((role, codec, frame.event if isinstance(frame.event, str) else "<other>"))
        before = await self.levels()
        if isinstance(frame.data, str):
            await raw.text(frame.data)
        else:
            await raw.binary(frame.data)
        try:
            ack = await raw.ack(frame.ack_id, timeout=40)
        except AssertionError:
            try:
                code, reason = await raw.wait_closed(timeout=15)
            except TimeoutError:
                raise AssertionError(f"neither an ack nor a close for {frame!r}") from None
            if too_big:
                assert code == MESSAGE_TOO_BIG, (code, reason, frame)
            else:
                assert not frame.well_formed, f"no ack for a well-formed frame: {frame!r}"
                assert code == PROTOCOL_CLOSE_CODE and reason.startswith("protocol error"), (code, reason, frame)
            self.closes += 1
            return
        assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), (frame, ack)
        if ack["ok"]:
            self.codes["OK"] = self.codes.get("OK", 0) + 1
            sale = ack.get("sale")
            if isinstance(sale, dict) and sale.get("id") and sale["id"] not in self.lots:
                self.lots.append(sale["id"])
        else:
            code = ack["error"]["code"]
            assert isinstance(code, str) and code and ack["error"].get("message"), (frame, ack)
            assert code != "INTERNAL", (frame, ack)
            self.codes[code] = self.codes.get(code, 0) + 1
            assert await self.levels() == before, f"refused {code} but stock changed: {frame!r}"
        await self.audit()
        await self.revive()


def _sweep(events: list[str], lot: str) -> list[tuple[str, Any]]:
    """Fixed nasty payloads for every event, so each one is driven whatever hypothesis draws."""
    nasty: list[Any] = [None, {}, "x", [1, 2], 2**64, {"sale_id": lot, "qty": 2**64, "request_id": "\ud800"},
                        {"sale_id": lot, "qty": math.nan, "text": "y" * 20_000}, {"sale_id": [lot], "poll_id": {}}]
    return [(e, p) for e in events for p in nasty]


async def test_every_registered_event_survives_hostile_input(make_server, redis, token) -> None:
    srv = await make_server(chat_rate=1000.0, chat_burst=1000)
    hub = srv.app["node"].hub
    hub.registry.rate = hub.registry.burst = 1e9  # past the flood limit on purpose: reach the handlers
    await BroadcastStore(redis).ensure("b1", title="Fuzz", host="h1", products=PRODUCTS)
    events = sorted(hub.registry.commands)
    assert len(events) >= 20, events  # the whole registry is here, not a handful
    tokens = {"viewer": token("viewer", "b1", "v1"), "host": token("host", "b1", "h1")}
    loop = asyncio.get_running_loop()
    with LogTrap() as trap:
        async with aiohttp.ClientSession() as session:
            run = Run(session, srv.url, tokens, hub, srv.app["node"].inventory, srv.config.max_message_bytes)
            host = await run.socket("host", "json")
            made = await host.call("sale.schedule", {"product_id": "p1", "units": 5, "limit": 2, "hold_s": 3600})
            assert made["ok"], made
            lot = made["sale"]["id"]
            run.lots.append(lot)
            assert (await (await run.socket("viewer", "json")).call("sale.reserve",
                                                                      {"sale_id": lot, "request_id": "r1"}))["ok"]
            for role, codec in itertools.product(ROLES, CODECS):
                for event, payload in _sweep(events, lot):
                    ack_id = next(run.ids)
                    data = [event] if payload is None else [event, payload]
                    await run.send(role, codec, Frame(encode(codec, data, ack_id), ack_id, True, event, "sweep"))
            missing = {(r, c, e) for r in ROLES for c in CODECS for e in events} - run.driven
            assert not missing, sorted(missing)

            bridge = Bridge(loop)

            @fuzz_settings(EXAMPLES)
            @given(role=st.sampled_from(ROLES), codec=st.sampled_from(CODECS), data=st.data())
            def fuzz(role: str, codec: str, data: st.DataObject) -> None:
                frame = data.draw(frames(codec, events, next(run.ids), tuple(run.lots)), label="frame")
                bridge.run(run.send(role, codec, frame))

            await drive(fuzz)
            for raw in run.sockets.values():
                await raw.aclose()
    print("fuzz answers by code:", dict(sorted(run.codes.items())), "closes:", run.closes)
    assert not trap.bad, trap.bad[:20]
    assert run.codes.get("OK", 0) > 0 and len(run.codes) > 5, run.codes  # it reached real handlers
