"""Compaction of a finished lot: audit summary + SOLD reservations kept, history dropped, memory freed;
refused (nothing changes) while the lot is open, holds units or is inside its grace."""
from __future__ import annotations

import asyncio

import pytest

from inventory import Inventory, LotState, Refusal, ReservationState, keys_for
from inventory.compaction import COMPACT_INDEX, backfill


async def lot_bytes(redis, lot_id: str) -> int:
    """MEMORY USAGE of every key of the lot (0 for a missing key)."""
    total = 0
    for key in keys_for(lot_id):
        total += int(await redis.memory_usage(key, samples=0) or 0)
    return total


async def busy_sale(inv: Inventory, make_lot, users: int = 40):
    """A lot of 10 units that went through what a flash sale does: most holds released or expired,
    a waitlist, a few paid."""
    lot = await make_lot(total=10, per_user_limit=2, hold_s=60)
    sold, released, reserved = [], [], 0
    for i in range(users):
        r = await inv.reserve(lot.lot_id, f"user-{i:03d}", 1, f"req-{i}")
        reserved += r.ok
        if r.ok and i % 4 == 0:
            assert (await inv.begin_payment(lot.lot_id, r.reservation.id, f"user-{i:03d}")).ok
            assert (await inv.confirm(lot.lot_id, r.reservation.id, f"order-{i}")).ok
            sold.append(r.reservation.id)
        elif r.ok:
            assert (await inv.release(lot.lot_id, r.reservation.id, f"user-{i:03d}")).ok
            released.append(r.reservation.id)
        else:
            await inv.join_waitlist(lot.lot_id, f"user-{i:03d}", 1)
    assert len(sold) >= 5 and len(released) >= 10 and reserved == len(sold) + len(released)
    return lot, sold, released, reserved


async def test_compaction_keeps_the_audit_and_sold_reservations_and_frees_memory(inv, make_lot, redis):
    lot, sold, released, reserved = await busy_sale(inv, make_lot)
    await inv.close(lot.lot_id)
    before_audit = await inv.audit(lot.lot_id)
    assert before_audit.ok and before_audit.levels.sold == len(sold)
    before = await lot_bytes(redis, lot.lot_id)

    res = await inv.compact(lot.lot_id, grace_s=0)

    assert res.code == "" and res.compacted and res.at_ms
    assert (res.released, res.expired, res.requests) == (len(released), 0, reserved)
    assert res.events > 40 and res.waitlist > 0
    after = await lot_bytes(redis, lot.lot_id)
    assert after < before / 3, (before, after)
    audit = await inv.audit(lot.lot_id)
    assert audit.ok, audit.problems
    a, b = audit.levels, before_audit.levels
    assert (a.total, a.available, a.held, a.sold) == (b.total, b.available, b.held, b.sold)
    assert a.waitlist == 0 and audit.compacted_at_ms == res.at_ms  # a closed lot's waitlist is dropped
    assert audit.reservations == len(sold)
    kept = await inv.reservations(lot.lot_id)
    assert sorted(r.id for r in kept) == sorted(sold)
    assert {r.state for r in kept} == {ReservationState.SOLD}
    assert [r.id for r in await inv.holds_of(lot.lot_id, "user-000")] == [sold[0]]
    assert await redis.exists(inv.events_key(lot.lot_id)) == 0
    # a compacted lot stays closed, and compacting again changes nothing
    with pytest.raises(Exception) as err:
        await inv.open(lot.lot_id)
    assert getattr(err.value, "code", None) == Refusal.CLOSED
    again = await inv.compact(lot.lot_id, grace_s=0)
    assert (again.code, again.at_ms) == ("COMPACTED", res.at_ms)
    assert await lot_bytes(redis, lot.lot_id) == after
    assert (await inv.get_lot(lot.lot_id)).state == LotState.CLOSED


async def test_not_compacted_while_open_holding_or_in_grace(inv, make_lot, redis):
    lot = await make_lot(total=3, per_user_limit=3, hold_s=60)
    r = await inv.reserve(lot.lot_id, "alice", 1, "a1")
    assert (await inv.compact(lot.lot_id, grace_s=0)).code == "NOT_CLOSED"
    await inv.close(lot.lot_id)  # a hold made before the close may still be paid
    settled = await inv.compact(lot.lot_id, grace_s=0)
    assert (settled.code, settled.at_ms) == ("NOT_SETTLED", r.reservation.expires_at_ms)
    assert (await inv.release(lot.lot_id, r.reservation.id, "alice")).ok
    last = (await inv.read_events(lot.lot_id))[-1]
    size, stored = await lot_bytes(redis, lot.lot_id), await inv.reservations(lot.lot_id)
    grace = await inv.compact(lot.lot_id, grace_s=3600)
    assert (grace.code, grace.at_ms) == ("NOT_DUE", last.at_ms + 3600 * 1000)
    assert await lot_bytes(redis, lot.lot_id) == size and await inv.reservations(lot.lot_id) == stored
    assert (await inv.compact("no-such-lot", grace_s=0)).code == "UNKNOWN_LOT"
    assert (await inv.compact("bad id!", grace_s=0)).code == "INVALID_REQUEST"


async def test_expired_holds_are_settled_by_the_compaction_itself(inv, make_lot, redis):
    lot = await make_lot(total=3, per_user_limit=3, hold_s=1)
    assert (await inv.reserve(lot.lot_id, "bob", 2, "b1")).ok
    await inv.close(lot.lot_id)
    await asyncio.sleep(1.2)  # the hold is due; nobody swept it
    first = await inv.compact(lot.lot_id, grace_s=0)
    # the script expired it (a fresh 'expired' event): the grace starts again from that event
    assert first.code in ("", "NOT_DUE")
    if first.code == "NOT_DUE":
        assert (await inv.compact(lot.lot_id, grace_s=0)).code == ""
    audit = await inv.audit(lot.lot_id)
    assert audit.ok and audit.levels.available == 3 and audit.reservations == 0


async def test_compact_due_follows_the_index(inv, make_lot, redis):
    now = await inv.server_time_ms()
    timed = await make_lot(total=2, closes_at_ms=now + 300)  # closes by itself
    manual = await make_lot(total=2)
    still_open = await make_lot(total=2)
    assert await redis.zscore(COMPACT_INDEX, timed.lot_id) == now + 300
    assert await redis.zscore(COMPACT_INDEX, manual.lot_id) is None
    await inv.close(manual.lot_id)
    await inv.open(manual.lot_id)  # reopened: found open, looked at again later
    await asyncio.sleep(0.4)
    done = dict(await inv.compact_due(grace_s=0))
    assert done[timed.lot_id].code == "" and done[manual.lot_id].code == "NOT_CLOSED"
    assert await redis.zscore(COMPACT_INDEX, timed.lot_id) is None
    assert await redis.zscore(COMPACT_INDEX, manual.lot_id) > await inv.server_time_ms()
    assert still_open.lot_id not in done
    # lots from before compaction existed are added once
    await redis.zrem(COMPACT_INDEX, still_open.lot_id, manual.lot_id)
    assert await backfill(redis) == 3  # every lot of inv:lots, the compacted one too (removed at its next look)
    assert await backfill(redis) == 0
