"""Every reservation operation and every refusal, against a real redis-server."""
from __future__ import annotations

import pytest

from inventory import Inventory, Refusal, ReservationState, StockLevels


async def stream_len(inv: Inventory, lot_id: str) -> int:
    return await inv.redis.xlen(inv.events_key(lot_id))


async def test_reserve_holds_units_until_redis_time_plus_hold(inv: Inventory, make_lot) -> None:
    lot = await make_lot(5, per_user_limit=2, hold_s=100)
    before = await inv.server_time_ms()
    res = await inv.reserve(lot.lot_id, "alice", 2, "click-1")
    after = await inv.server_time_ms()
    assert res.ok and res.code is None
    r = res.reservation
    assert r is not None and (r.user, r.qty, r.state, r.lot_id) == ("alice", 2, ReservationState.HELD, lot.lot_id)
    assert before + 100_000 <= r.expires_at_ms <= after + 100_000
    assert res.levels == StockLevels(5, 3, 2, 0, 0)
    assert await inv.get_reservation(lot.lot_id, r.id) == r
    assert await inv.holds_of(lot.lot_id, "alice") == [r]
    assert await inv.holds_of(lot.lot_id, "bob") == []


async def test_same_request_id_returns_the_first_answer(inv: Inventory, make_lot) -> None:
    lot = await make_lot(5, per_user_limit=2)
    first = await inv.reserve(lot.lot_id, "alice", 1, "click-1")
    again = await inv.reserve(lot.lot_id, "alice", 1, "click-1")
    assert again.reservation == first.reservation
    assert again.levels == StockLevels(5, 4, 1, 0, 0)  # nothing more held
    other_user = await inv.reserve(lot.lot_id, "bob", 1, "click-1")  # request ids are per user
    assert other_user.reservation.id != first.reservation.id
    # a retry answers even after the sale has closed: it is the same request
    await inv.close(lot.lot_id)
    assert (await inv.reserve(lot.lot_id, "alice", 1, "click-1")).reservation == first.reservation


async def test_refusals(inv: Inventory, make_lot) -> None:
    lot = await make_lot(3, per_user_limit=2)
    assert (await inv.reserve(lot.lot_id, "a", 3, "r")).code is Refusal.LIMIT_REACHED
    assert (await inv.reserve(lot.lot_id, "a", 2, "r")).ok
    assert (await inv.reserve(lot.lot_id, "a", 1, "r2")).code is Refusal.LIMIT_REACHED
    sold_out = await inv.reserve(lot.lot_id, "b", 2, "r")
    assert sold_out.code is Refusal.SOLD_OUT and sold_out.levels == StockLevels(3, 1, 2, 0, 0)
    assert (await inv.reserve(lot.lot_id, "b", 1, "r")).ok
    assert (await inv.reserve(lot.lot_id, "c", 1, "r")).code is Refusal.SOLD_OUT
    missing = await inv.reserve("missing", "a", 1, "r")
    assert missing.code is Refusal.UNKNOWN_LOT and missing.levels is None
    closed = await make_lot(3, open=False)
    assert (await inv.reserve(closed.lot_id, "a", 1, "r")).code is Refusal.NOT_OPEN
    await inv.close(closed.lot_id)
    assert (await inv.reserve(closed.lot_id, "a", 1, "r")).code is Refusal.CLOSED


BAD_RESERVES = [
    ({"qty": 0}, Refusal.INVALID_QTY), ({"qty": -1}, Refusal.INVALID_QTY),
    ({"qty": 10**9}, Refusal.INVALID_QTY), ({"qty": 10**30}, Refusal.INVALID_QTY),
    ({"qty": 1.0}, Refusal.INVALID_QTY), ({"qty": "1"}, Refusal.INVALID_QTY),
    ({"qty": True}, Refusal.INVALID_QTY), ({"qty": None}, Refusal.INVALID_QTY),
    ({"user": "u" * 65}, Refusal.INVALID_REQUEST), ({"user": ""}, Refusal.INVALID_REQUEST),
    ({"user": 42}, Refusal.INVALID_REQUEST), ({"user": None}, Refusal.INVALID_REQUEST),
    ({"user": "a\nb"}, Refusal.INVALID_REQUEST), ({"request_id": "r" * 65}, Refusal.INVALID_REQUEST),
    ({"request_id": b"bytes"}, Refusal.INVALID_REQUEST), ({"lot_id": "l" * 65}, Refusal.INVALID_REQUEST),
    ({"lot_id": ["x"]}, Refusal.INVALID_REQUEST), ({"lot_id": "a}b"}, Refusal.INVALID_REQUEST),
]


@pytest.mark.parametrize("bad,code", BAD_RESERVES)
async def test_bad_reserve_input_is_refused_and_changes_nothing(inv: Inventory, make_lot, bad, code) -> None:
    lot = await make_lot(5, per_user_limit=5)
    events = await stream_len(inv, lot.lot_id)
    call = {"lot_id": lot.lot_id, "user": "alice", "qty": 1, "request_id": "r1", **bad}
    res = await inv.reserve(**call)
    assert not res.ok and res.code is code and res.reservation is None
    assert await inv.snapshot(lot.lot_id) == StockLevels(5, 5, 0, 0, 0)
    assert await stream_len(inv, lot.lot_id) == events


async def test_bad_ids_on_other_ops_are_refused(inv: Inventory, make_lot) -> None:
    lot = await make_lot(5)
    res = await inv.reserve(lot.lot_id, "alice", 1, "r")
    rid = res.reservation.id
    before = await stream_len(inv, lot.lot_id)
    for bad in (None, 5, "", "x" * 65):
        assert (await inv.extend(lot.lot_id, rid, bad)).code is Refusal.INVALID_REQUEST
        assert (await inv.release(lot.lot_id, bad, "alice")).code is Refusal.INVALID_REQUEST
        assert (await inv.begin_payment(bad, rid, "alice")).code is Refusal.INVALID_REQUEST
        assert (await inv.confirm(lot.lot_id, rid, bad)).code is Refusal.INVALID_REQUEST
        assert (await inv.abort_payment(lot.lot_id, bad)).code is Refusal.INVALID_REQUEST
        assert (await inv.join_waitlist(lot.lot_id, bad, 1)).code is Refusal.INVALID_REQUEST
        assert await inv.get_reservation(lot.lot_id, bad) is None
        assert await inv.holds_of(lot.lot_id, bad) == []
    for qty in (0, -2, 2.5, False, 10**7):
        assert (await inv.join_waitlist(lot.lot_id, "bob", qty)).code is Refusal.INVALID_QTY
    assert await stream_len(inv, lot.lot_id) == before
    assert await inv.snapshot(lot.lot_id) == StockLevels(5, 4, 1, 0, 0)


async def test_unknown_lot_and_reservation(inv: Inventory, make_lot) -> None:
    lot = await make_lot(5)
    assert (await inv.release("missing", "r1", "u")).code is Refusal.UNKNOWN_LOT
    assert (await inv.confirm("missing", "r1", "o")).code is Refusal.UNKNOWN_LOT
    for res in (await inv.release(lot.lot_id, "r99", "u"), await inv.extend(lot.lot_id, "r99", "u"),
                await inv.begin_payment(lot.lot_id, "r99", "u"), await inv.confirm(lot.lot_id, "r99", "o"),
                await inv.abort_payment(lot.lot_id, "r99")):
        assert res.code is Refusal.UNKNOWN_RESERVATION and res.levels == StockLevels(5, 5, 0, 0, 0)
    assert await inv.snapshot("missing") is None
    assert await inv.expire_due("missing") == 0
    assert (await inv.join_waitlist("missing", "u", 1)).code is Refusal.UNKNOWN_LOT


async def test_owner_is_checked(inv: Inventory, make_lot) -> None:
    lot = await make_lot(5)
    rid = (await inv.reserve(lot.lot_id, "alice", 1, "r")).reservation.id
    for op in (inv.release, inv.extend, inv.begin_payment):
        res = await op(lot.lot_id, rid, "mallory")
        assert res.code is Refusal.NOT_OWNER and res.reservation is None  # nothing leaked
    assert (await inv.get_reservation(lot.lot_id, rid)).state is ReservationState.HELD


async def test_extend_once_and_bounded(inv: Inventory, make_lot) -> None:
    lot = await make_lot(5, hold_s=100)  # inv fixture: max_extend_s=30 -> +30 s
    r = (await inv.reserve(lot.lot_id, "alice", 1, "r")).reservation
    ext = await inv.extend(lot.lot_id, r.id, "alice")
    assert ext.ok and ext.reservation.extended
    assert ext.reservation.expires_at_ms == r.expires_at_ms + 30_000
    again = await inv.extend(lot.lot_id, r.id, "alice")
    assert again.code is Refusal.ALREADY_EXTENDED
    assert again.reservation.expires_at_ms == ext.reservation.expires_at_ms
    short = await make_lot(5, hold_s=10)
    r2 = (await inv.reserve(short.lot_id, "alice", 1, "r")).reservation
    ext2 = await inv.extend(short.lot_id, r2.id, "alice")
    assert ext2.reservation.expires_at_ms == r2.expires_at_ms + 10_000


async def test_release_frees_units_and_is_idempotent(inv: Inventory, make_lot) -> None:
    lot = await make_lot(2, per_user_limit=2)
    r = (await inv.reserve(lot.lot_id, "alice", 2, "r")).reservation
    rel = await inv.release(lot.lot_id, r.id, "alice")
    assert rel.ok and rel.reservation.state is ReservationState.RELEASED
    assert rel.levels == StockLevels(2, 2, 0, 0, 0)
    assert (await inv.release(lot.lot_id, r.id, "alice")).ok
    assert await inv.snapshot(lot.lot_id) == StockLevels(2, 2, 0, 0, 0)
    assert (await inv.extend(lot.lot_id, r.id, "alice")).code is Refusal.NOT_HELD
    assert (await inv.begin_payment(lot.lot_id, r.id, "alice")).code is Refusal.NOT_HELD
    assert (await inv.confirm(lot.lot_id, r.id, "o1")).code is Refusal.NOT_PAYING
    assert await inv.holds_of(lot.lot_id, "alice") == []
    assert (await inv.reserve(lot.lot_id, "alice", 2, "r2")).ok  # the limit counts live units only


async def test_payment_flow(inv: Inventory, make_lot) -> None:
    lot = await make_lot(3, per_user_limit=2, hold_s=10)  # fixture: payment grace 60 s
    r = (await inv.reserve(lot.lot_id, "alice", 2, "r")).reservation
    assert (await inv.confirm(lot.lot_id, r.id, "o1")).code is Refusal.NOT_PAYING
    t0 = await inv.server_time_ms()
    paying = await inv.begin_payment(lot.lot_id, r.id, "alice")
    assert paying.ok and paying.reservation.state is ReservationState.PAYING
    assert paying.reservation.expires_at_ms >= t0 + 60_000
    assert (await inv.begin_payment(lot.lot_id, r.id, "alice")).reservation == paying.reservation
    assert (await inv.release(lot.lot_id, r.id, "alice")).code is Refusal.NOT_HELD
    assert (await inv.extend(lot.lot_id, r.id, "alice")).code is Refusal.NOT_HELD
    aborted = await inv.abort_payment(lot.lot_id, r.id)
    assert aborted.ok and aborted.reservation.state is ReservationState.HELD
    assert aborted.reservation.expires_at_ms == r.expires_at_ms  # the hold's own expiry
    assert (await inv.abort_payment(lot.lot_id, r.id)).ok  # retry: ok, no change
    await inv.begin_payment(lot.lot_id, r.id, "alice")
    sold = await inv.confirm(lot.lot_id, r.id, "order-1")
    assert sold.ok and sold.reservation.state is ReservationState.SOLD
    assert sold.reservation.order_id == "order-1"
    assert sold.levels == StockLevels(3, 1, 0, 2, 0)
    assert (await inv.confirm(lot.lot_id, r.id, "order-1")).ok
    assert (await inv.confirm(lot.lot_id, r.id, "order-2")).code is Refusal.NOT_PAYING
    assert (await inv.abort_payment(lot.lot_id, r.id)).code is Refusal.NOT_PAYING
    assert (await inv.release(lot.lot_id, r.id, "alice")).code is Refusal.NOT_HELD
    assert (await inv.reserve(lot.lot_id, "alice", 1, "r2")).code is Refusal.LIMIT_REACHED  # sold counts
    assert [h.state for h in await inv.holds_of(lot.lot_id, "alice")] == [ReservationState.SOLD]
    assert await inv.snapshot(lot.lot_id) == StockLevels(3, 1, 0, 2, 0)
    audit = await inv.audit(lot.lot_id)
    assert audit.ok and audit.oversold == 0 and audit.max_user_units == 2


async def test_every_change_is_in_the_stream(inv: Inventory, make_lot) -> None:
    lot = await make_lot(1)
    r = (await inv.reserve(lot.lot_id, "alice", 1, "r")).reservation
    await inv.join_waitlist(lot.lot_id, "bob", 1)
    await inv.begin_payment(lot.lot_id, r.id, "alice")
    await inv.abort_payment(lot.lot_id, r.id)
    await inv.extend(lot.lot_id, r.id, "alice")
    await inv.release(lot.lot_id, r.id, "alice")
    await inv.close(lot.lot_id)
    events = await inv.read_events(lot.lot_id)
    assert [e.type for e in events] == [
        "lot_created", "lot_opened", "reserved", "waitlist_joined", "payment_begun", "payment_aborted",
        "extended", "released", "waitlist_granted", "lot_closed"]
    granted = events[8]
    assert granted.data["user"] == "bob" and granted.levels == StockLevels(1, 0, 1, 0, 0)
    later = await inv.read_events(lot.lot_id, after_id=events[5].id, count=2)
    assert [e.type for e in later] == ["extended", "released"]
    assert await inv.read_events(lot.lot_id, after_id=events[-1].id) == []


async def test_event_stream_is_capped(redis, make_lot) -> None:
    small = Inventory(redis, events_maxlen=50)
    lot = await make_lot(1000, per_user_limit=1000)
    for i in range(300):
        await small.reserve(lot.lot_id, "u", 1, f"r{i}")
    assert await redis.xlen(small.events_key(lot.lot_id)) < 250  # MAXLEN ~ trims in whole nodes


def test_every_refusal_has_a_message() -> None:
    from inventory import MESSAGES

    assert set(MESSAGES) == set(Refusal) and all(MESSAGES.values())


async def test_refusals_carry_their_message(inv: Inventory, make_lot) -> None:
    from inventory import MESSAGES

    lot = await make_lot(1)
    await inv.reserve(lot.lot_id, "a", 1, "r")
    res = await inv.reserve(lot.lot_id, "b", 1, "r")
    assert res.code is Refusal.SOLD_OUT and res.message == MESSAGES[Refusal.SOLD_OUT]


async def test_read_events_and_constructor_validate_input(inv: Inventory, make_lot, redis) -> None:
    from inventory import InventoryError

    lot = await make_lot(1)
    for bad in (dict(after_id="nope"), dict(after_id=5), dict(count=0), dict(count=True), dict(block_ms=-1)):
        with pytest.raises(InventoryError) as e:
            await inv.read_events(lot.lot_id, **bad)
        assert e.value.refusal is Refusal.INVALID_REQUEST
    assert [e.type for e in await inv.read_events(lot.lot_id, after_id="0")] == ["lot_created", "lot_opened"]
    assert await inv.read_events(lot.lot_id, after_id="$", block_ms=10) == []
    for bad in (dict(events_maxlen=0), dict(payment_grace_s=-1), dict(max_extend_s=1.5)):
        with pytest.raises(ValueError):
            Inventory(redis, **bad)
