"""A hold's lifetime is bounded whatever payments do, and a cancelled lot sells nothing more.

Issue 13 rows 3 and 4: declining cards used to push a hold's expiry out by the payment grace on
every attempt (forever), and a cancelled lot still let held units be paid."""
from __future__ import annotations

import asyncio

from inventory import Inventory, Refusal, ReservationState, StockLevels


async def test_declines_never_move_the_hold_and_attempts_are_capped(redis, make_lot) -> None:
    inv = Inventory(redis, payment_grace_s=120)  # the production grace
    lot = await make_lot(3, hold_s=10)
    held = (await inv.reserve(lot.lot_id, "alice", 1, "r")).reservation
    assert held is not None
    own = held.expires_at_ms
    for attempt in range(1, 4):
        paying = await inv.begin_payment(lot.lot_id, held.id, "alice")
        assert paying.ok and paying.reservation.payment_attempts == attempt
        assert paying.reservation.expires_at_ms <= own + 120_000  # the cap
        aborted = await inv.abort_payment(lot.lot_id, held.id)
        assert aborted.ok and aborted.reservation.expires_at_ms == own, (attempt, aborted)
    before = await inv.get_reservation(lot.lot_id, held.id)
    fourth = await inv.begin_payment(lot.lot_id, held.id, "alice")
    assert fourth.code is Refusal.TOO_MANY_ATTEMPTS
    assert await inv.get_reservation(lot.lot_id, held.id) == before  # refused: nothing changed
    assert before is not None and before.state is ReservationState.HELD and before.expires_at_ms == own
    assert (await inv.audit(lot.lot_id)).ok


async def test_an_abort_after_the_holds_own_end_expires_it(redis, make_lot) -> None:
    inv = Inventory(redis, payment_grace_s=30)
    lot = await make_lot(2, hold_s=1)
    held = (await inv.reserve(lot.lot_id, "alice", 1, "r")).reservation
    assert held is not None
    assert (await inv.begin_payment(lot.lot_id, held.id, "alice")).ok
    await asyncio.sleep(1.2)  # the hold's own second is over while the card is being declined
    aborted = await inv.abort_payment(lot.lot_id, held.id)
    assert aborted.code is Refusal.EXPIRED and aborted.reservation.state is ReservationState.EXPIRED
    assert aborted.levels == StockLevels(2, 2, 0, 0, 0)
    assert (await inv.audit(lot.lot_id)).ok


async def test_cancel_frees_holds_empties_the_waitlist_and_refuses_payment(inv: Inventory, make_lot) -> None:
    lot = await make_lot(3, per_user_limit=2)
    sold = (await inv.reserve(lot.lot_id, "ann", 1, "a")).reservation
    paying = (await inv.reserve(lot.lot_id, "ben", 1, "b")).reservation
    held = (await inv.reserve(lot.lot_id, "cat", 1, "c")).reservation
    assert sold and paying and held
    await inv.begin_payment(lot.lot_id, sold.id, "ann")
    assert (await inv.confirm(lot.lot_id, sold.id, "o-ann")).ok
    assert (await inv.begin_payment(lot.lot_id, paying.id, "ben")).ok  # a charge in flight
    assert (await inv.join_waitlist(lot.lot_id, "dan", 1)).ok

    cancelled = await inv.cancel(lot.lot_id)
    assert cancelled.levels == StockLevels(3, 2, 0, 1, 0)  # available + held + sold == total
    for rid in (paying.id, held.id):
        r = await inv.get_reservation(lot.lot_id, rid)
        assert r is not None and r.state is ReservationState.CANCELLED
    events = await inv.read_events(lot.lot_id)
    tail = [(e.type, e.data.get("user")) for e in events[-4:]]
    assert tail == [("hold_cancelled", "ben"), ("hold_cancelled", "cat"), ("waitlist_cancelled", "dan"),
                    ("lot_cancelled", None)]

    confirm = await inv.confirm(lot.lot_id, paying.id, "o-ben")  # the charge landed after the cancel
    assert confirm.code is Refusal.SALE_CANCELLED
    begin = await inv.begin_payment(lot.lot_id, held.id, "cat")
    assert begin.code is Refusal.SALE_CANCELLED
    assert (await inv.confirm(lot.lot_id, sold.id, "o-ann")).ok  # a retry of a sale made before stays ok
    assert await inv.snapshot(lot.lot_id) == StockLevels(3, 2, 0, 1, 0)
    audit = await inv.audit(lot.lot_id)
    assert audit.ok, audit.problems


async def test_forget_user_renames_keeps_the_audit_and_forgets_requests(inv: Inventory, make_lot) -> None:
    """Erasure (issue 13 row 9) at the lot: the person's reservations name a pseudonym, counts stay."""
    lot = await make_lot(2, per_user_limit=2)
    first = (await inv.reserve(lot.lot_id, "alice", 1, "a1")).reservation
    assert first is not None and (await inv.release(lot.lot_id, first.id, "alice")).ok  # a final one
    live = (await inv.reserve(lot.lot_id, "alice", 1, "a2")).reservation
    assert live is not None and (await inv.reserve(lot.lot_id, "bob", 1, "b1")).ok
    assert (await inv.join_waitlist(lot.lot_id, "alice", 1)).ok  # sold out: she waits for one more
    assert (await inv.join_waitlist(lot.lot_id, "carol", 1)).ok
    before = await inv.snapshot(lot.lot_id)
    assert before is not None and before.waitlist == 2
    assert [r.id for r in await inv.user_reservations(lot.lot_id, "alice")] == [first.id, live.id]

    assert await inv.forget_user(lot.lot_id, "alice", "erased-1") == 2
    assert await inv.user_reservations(lot.lot_id, "alice") == []
    assert [r.state for r in await inv.user_reservations(lot.lot_id, "erased-1")] == [
        ReservationState.RELEASED, ReservationState.HELD]
    after = await inv.snapshot(lot.lot_id)  # the same counts; she left the waitlist
    assert after is not None and (after.total, after.available, after.held, after.sold, after.waitlist) == (
        before.total, before.available, before.held, before.sold, 1)
    audit = await inv.audit(lot.lot_id)
    assert audit.ok, audit.problems
    again = await inv.reserve(lot.lot_id, "alice", 1, "a2")  # the old request id is forgotten
    assert again.code is Refusal.SOLD_OUT
    assert await inv.forget_user(lot.lot_id, "carol", "erased-2") == 0  # only waiting: leaves the queue
    assert (await inv.snapshot(lot.lot_id)).waitlist == 0 and (await inv.audit(lot.lot_id)).ok
