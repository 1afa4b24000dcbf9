"""Expiry follows Redis's clock (never the client's), lazily and by sweep; freed units reach the
waitlist first."""
from __future__ import annotations

import time

import pytest

from inventory import Inventory, Refusal, ReservationState, StockLevels

from .conftest import wait_until


async def pass_server_time(inv: Inventory, at_ms: int) -> None:
    async def passed() -> bool:
        return await inv.server_time_ms() > at_ms

    await wait_until(passed)


async def test_sweeper_expires_after_hold_on_redis_clock(inv: Inventory, make_lot) -> None:
    lot = await make_lot(3, per_user_limit=2, hold_s=1)
    r = (await inv.reserve(lot.lot_id, "alice", 2, "r")).reservation
    assert r is not None
    if await inv.server_time_ms() < r.expires_at_ms:
        assert await inv.expire_due(lot.lot_id) == 0
    await pass_server_time(inv, r.expires_at_ms)
    assert (await inv.get_reservation(lot.lot_id, r.id)).state is ReservationState.EXPIRED
    assert await inv.expire_due(lot.lot_id) == 1
    assert await inv.expire_due(lot.lot_id) == 0
    assert await inv.snapshot(lot.lot_id) == StockLevels(3, 3, 0, 0, 0)
    assert (await inv.release(lot.lot_id, r.id, "alice")).code is Refusal.EXPIRED
    assert (await inv.extend(lot.lot_id, r.id, "alice")).code is Refusal.EXPIRED
    assert (await inv.begin_payment(lot.lot_id, r.id, "alice")).code is Refusal.EXPIRED
    assert "expired" in [e.type for e in await inv.read_events(lot.lot_id)]
    assert (await inv.audit(lot.lot_id)).ok


@pytest.mark.parametrize("skew_s", [10 * 365 * 86400, -10 * 365 * 86400])
async def test_skewed_client_clock_changes_nothing(inv: Inventory, make_lot, monkeypatch, skew_s) -> None:
    real_time, real_ns = time.time, time.time_ns
    monkeypatch.setattr(time, "time", lambda: real_time() + skew_s)
    monkeypatch.setattr(time, "time_ns", lambda: real_ns() + skew_s * 10**9)
    lot = await make_lot(1, hold_s=2)
    server_before = await inv.server_time_ms()
    r = (await inv.reserve(lot.lot_id, "alice", 1, "r")).reservation
    assert r is not None
    assert server_before + 2000 <= r.expires_at_ms <= await inv.server_time_ms() + 2000  # Redis clock
    # not early: a client living ten years ahead cannot expire it
    if await inv.server_time_ms() < r.expires_at_ms:
        assert await inv.expire_due(lot.lot_id) == 0
        assert (await inv.reserve(lot.lot_id, "bob", 1, "r")).code is Refusal.SOLD_OUT
    # not late: a client living ten years behind does not keep it alive
    await pass_server_time(inv, r.expires_at_ms)
    assert (await inv.reserve(lot.lot_id, "bob", 1, "r")).ok
    assert (await inv.get_reservation(lot.lot_id, r.id)).state is ReservationState.EXPIRED


async def test_lazy_expiry_inside_reserve(inv: Inventory, make_lot) -> None:
    lot = await make_lot(1, hold_s=1)
    r = (await inv.reserve(lot.lot_id, "alice", 1, "r")).reservation
    await pass_server_time(inv, r.expires_at_ms)
    res = await inv.reserve(lot.lot_id, "bob", 1, "r")  # no sweeper ran
    assert res.ok and res.levels == StockLevels(1, 0, 1, 0, 0)
    assert (await inv.audit(lot.lot_id)).ok


async def test_paying_outlives_the_hold_but_not_the_grace(redis, make_lot) -> None:
    inv = Inventory(redis, payment_grace_s=3)
    lot = await make_lot(2, per_user_limit=2, hold_s=1)
    a = (await inv.reserve(lot.lot_id, "alice", 1, "a")).reservation
    b = (await inv.reserve(lot.lot_id, "bob", 1, "b")).reservation
    pa = (await inv.begin_payment(lot.lot_id, a.id, "alice")).reservation
    pb = (await inv.begin_payment(lot.lot_id, b.id, "bob")).reservation
    assert pa.expires_at_ms >= a.expires_at_ms + 1000
    await pass_server_time(inv, a.expires_at_ms)
    if await inv.server_time_ms() < pa.expires_at_ms:
        assert await inv.expire_due(lot.lot_id) == 0  # the charges are in flight
        assert (await inv.confirm(lot.lot_id, a.id, "o-a")).ok
    await pass_server_time(inv, pb.expires_at_ms)
    late = await inv.confirm(lot.lot_id, b.id, "o-b")
    assert late.code is Refusal.EXPIRED and late.reservation.state is ReservationState.EXPIRED
    assert (await inv.audit(lot.lot_id)).ok


async def test_freed_units_go_to_the_waitlist_first(inv: Inventory, make_lot) -> None:
    lot = await make_lot(2, per_user_limit=2, hold_s=1)
    assert (await inv.join_waitlist(lot.lot_id, "early", 1)).code is Refusal.NOT_SOLD_OUT
    a = (await inv.reserve(lot.lot_id, "alice", 2, "r")).reservation
    w1 = await inv.join_waitlist(lot.lot_id, "bob", 1)
    w2 = await inv.join_waitlist(lot.lot_id, "carol", 2)
    assert (w1.ok, w1.position, w2.position) == (True, 1, 2)
    assert (await inv.join_waitlist(lot.lot_id, "bob", 1)).position == 1  # already queued
    assert (await inv.join_waitlist(lot.lot_id, "alice", 1)).code is Refusal.LIMIT_REACHED
    assert (await inv.snapshot(lot.lot_id)).waitlist == 2
    await pass_server_time(inv, a.expires_at_ms)
    # a reserve arriving after the expiry finds the units already handed to the waitlist
    late = await inv.reserve(lot.lot_id, "dave", 1, "r")
    assert late.code is Refusal.SOLD_OUT and late.levels == StockLevels(2, 0, 2, 0, 0)
    (bob,) = await inv.holds_of(lot.lot_id, "bob")
    (carol,) = await inv.holds_of(lot.lot_id, "carol")
    assert (bob.qty, bob.from_waitlist, carol.qty, carol.from_waitlist) == (1, True, 1, True)  # carol: what was left
    granted = [e for e in await inv.read_events(lot.lot_id) if e.type == "waitlist_granted"]
    assert [(e.data["user"], e.data["reservation"]) for e in granted] == [("bob", bob.id), ("carol", carol.id)]
    # a release serves the next in line too
    assert (await inv.join_waitlist(lot.lot_id, "dave", 1)).position == 1
    assert (await inv.release(lot.lot_id, bob.id, "bob")).levels == StockLevels(2, 0, 2, 0, 0)
    assert [h.user for h in await inv.holds_of(lot.lot_id, "dave")] == ["dave"]
    assert (await inv.audit(lot.lot_id)).ok


async def test_restock_serves_the_waitlist(inv: Inventory, make_lot) -> None:
    lot = await make_lot(1, per_user_limit=1)
    a = (await inv.reserve(lot.lot_id, "alice", 1, "r")).reservation
    assert (await inv.join_waitlist(lot.lot_id, "bob", 1)).ok
    assert (await inv.adjust_total(lot.lot_id, 2)).levels == StockLevels(2, 0, 2, 0, 0)
    assert (await inv.holds_of(lot.lot_id, "bob"))[0].from_waitlist
    # bob, now at his limit, cannot queue again; with nobody waiting a freed unit is for everyone
    assert (await inv.join_waitlist(lot.lot_id, "bob", 1)).code is Refusal.LIMIT_REACHED
    await inv.release(lot.lot_id, a.id, "alice")
    assert await inv.snapshot(lot.lot_id) == StockLevels(2, 1, 1, 0, 0)


async def test_waitlist_refusals(inv: Inventory, make_lot) -> None:
    lot = await make_lot(1, open=False)
    assert (await inv.join_waitlist(lot.lot_id, "u", 1)).code is Refusal.NOT_OPEN
    await inv.close(lot.lot_id)
    assert (await inv.join_waitlist(lot.lot_id, "u", 1)).code is Refusal.CLOSED


async def test_sweep_covers_every_lot(inv: Inventory, make_lot) -> None:
    lots = [await make_lot(2, hold_s=1) for _ in range(3)]
    holds = [(await inv.reserve(lot.lot_id, "alice", 1, "r")).reservation for lot in lots]
    await pass_server_time(inv, max(h.expires_at_ms for h in holds))
    assert await inv.sweep() == 3
    assert await inv.sweep([lot.lot_id for lot in lots]) == 0
    for lot in lots:
        assert await inv.snapshot(lot.lot_id) == StockLevels(2, 2, 0, 0, 0)
