"""A big room's tick is handed out in slices with the event loop running between them, and an
event produced meanwhile still reaches every socket after that tick (live/fanout/handout.py)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from live.fanout import conn as conn_mod
from tests.fanout.conftest import fanout_of, wait_for

N = 7
MARK = b"slice-mark"


async def _room(make_server: Any, clients: Any, token: Any, bc: str, slice_sockets: int = 2
                ) -> tuple[Any, Any, list[Any]]:
    srv = await make_server(tick_ms=50, fanout_slice_sockets=slice_sockets)  # HAWKER_FANOUT_SLICE_SOCKETS
    cs = [await clients(srv.url, token("viewer", bc, f"u{i}")) for i in range(N)]
    await wait_for(lambda: all(c.of("snapshot") for c in cs), what="snapshots")
    fan = fanout_of(srv)
    await asyncio.sleep(0.2)  # the join ticks are out
    return srv, fan, cs


def _marked(c: Any) -> int:
    """Index in c's events of the tick that carries the mark level."""
    return next(i for i, (e, d) in enumerate(c.events) if e == "tick" and "mark" in (d.get("levels") or {}))


@pytest.mark.parametrize(("slice_sockets", "first_turn_after"), [(2, 2), (0, N)])
async def test_the_loop_runs_between_the_slices_of_a_tick(make_server, bc, clients, token, slice_sockets,
                                                          first_turn_after) -> None:
    """With slices of 2 the loop turns after the first 2 sockets; with 0 (off) after all of them."""
    _srv, fan, cs = await _room(make_server, clients, token, bc, slice_sockets)
    loop = asyncio.get_running_loop()
    written: list[Any] = []
    seen_by_the_loop: list[int] = []

    def tap(conn: Any, data: bytes) -> None:
        if MARK in data:
            written.append(conn)
            if len(written) == 1:  # runs at the loop's next turn: inside the tick only if it yields
                loop.call_soon(lambda: seen_by_the_loop.append(len(written)))

    conn_mod.tap = tap
    try:
        fan.level(bc, "mark", {"m": MARK.decode()})
        await wait_for(lambda: all(any("mark" in (t.get("levels") or {}) for t in c.ticks()) for c in cs),
                       what="the marked tick on every socket")
    finally:
        conn_mod.tap = None
    assert len(written) == N
    assert seen_by_the_loop == [first_turn_after]


async def test_an_event_produced_during_a_sliced_tick_arrives_after_it_everywhere(make_server, bc, clients,
                                                                                 token) -> None:
    _srv, fan, cs = await _room(make_server, clients, token, bc)
    loop = asyncio.get_running_loop()
    written: list[Any] = []

    def produce() -> None:
        fan.urgent(bc, "sale.open", {"sale_id": "s1"})
        fan.to_user(bc, f"u{N - 1}", "order.paid", {"order_id": "o1"})  # a socket of the last slice

    def tap(conn: Any, data: bytes) -> None:
        if MARK in data:
            written.append(conn)
            if len(written) == 1:
                loop.call_soon(produce)

    conn_mod.tap = tap
    try:
        fan.level(bc, "mark", {"m": MARK.decode()})
        await wait_for(lambda: all(c.of("sale.open") for c in cs), what="the urgent event on every socket")
        await wait_for(lambda: cs[-1].of("order.paid"), what="the private message")
    finally:
        conn_mod.tap = None
    for c in cs:
        urgent = next(i for i, (e, _) in enumerate(c.events) if e == "sale.open")
        assert _marked(c) < urgent, "an event produced after a tick was built must not overtake it"
    last = cs[-1]
    assert _marked(last) < next(i for i, (e, _) in enumerate(last.events) if e == "order.paid")
    # once the tick is out nothing is held: the next urgent event goes at once
    assert fan._rooms[bc].held == [] and not fan._rooms[bc].sending
