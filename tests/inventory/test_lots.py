"""Lots: create, read, open/close/cancel by hand and by Redis time, restock and reduce."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest

from inventory import Inventory, InventoryError, LotSpec, LotState, Refusal, StockLevels


async def test_create_and_get(inv: Inventory) -> None:
    lot = await inv.create_lot(LotSpec("a1", "SKU-A", 10, 2500, "USD", per_user_limit=3, hold_s=90))
    assert lot.state is LotState.SCHEDULED  # no opens_at: only open() opens it
    assert lot.levels == StockLevels(10, 10, 0, 0, 0)
    got = await inv.get_lot("a1")
    assert got is not None
    assert (got.sku, got.total, got.unit_price, got.currency, got.per_user_limit, got.hold_s) == (
        "SKU-A", 10, 2500, "USD", 3, 90)
    assert got.opens_at_ms is None and got.closes_at_ms is None
    assert abs(got.created_at_ms - await inv.server_time_ms()) < 60_000
    assert await inv.get_lot("nope") is None
    assert "a1" in await inv.list_lots()


async def test_duplicate_lot_is_refused(inv: Inventory, make_lot) -> None:
    lot = await make_lot(3)
    with pytest.raises(InventoryError) as e:
        await inv.create_lot(LotSpec(lot.lot_id, "X", 99, 1, "EUR"))
    assert e.value.refusal is Refusal.LOT_EXISTS
    assert (await inv.snapshot(lot.lot_id)) == StockLevels(3, 3, 0, 0, 0)


async def test_create_lot_again_with_the_same_spec_is_a_retry(inv: Inventory) -> None:
    spec = LotSpec("again", "SKU", 3, 100, "EUR", per_user_limit=2, hold_s=60, opens_at_ms=10**12)
    first = await inv.create_lot(spec)
    await inv.reserve("again", "alice", 1, "r")
    again = await inv.create_lot(spec)
    assert again.created_at_ms == first.created_at_ms and again.levels == StockLevels(3, 2, 1, 0, 0)
    for changed in (dict(total=4), dict(unit_price=101), dict(hold_s=61), dict(closes_at_ms=2 * 10**12)):
        with pytest.raises(InventoryError) as e:
            await inv.create_lot(dataclasses.replace(spec, **changed))
        assert e.value.refusal is Refusal.LOT_EXISTS


@pytest.mark.parametrize("changes", [
    {"lot_id": "has space"}, {"lot_id": "x" * 65}, {"lot_id": "{tag}"}, {"lot_id": 7},
    {"total": -1}, {"total": 1.5}, {"total": True}, {"unit_price": -5}, {"unit_price": "9.99"},
    {"currency": "euro"}, {"currency": "eur"}, {"per_user_limit": 0}, {"hold_s": 0},
    {"sku": ""}, {"sku": "s" * 65}, {"opens_at_ms": -1}, {"opens_at_ms": 2000, "closes_at_ms": 1000},
])
async def test_invalid_spec_is_refused_and_creates_nothing(inv: Inventory, redis, changes) -> None:
    fields = dict(lot_id="good", sku="S", total=5, unit_price=100, currency="EUR")
    fields.update(changes)
    with pytest.raises(InventoryError) as e:
        await inv.create_lot(LotSpec(**fields))
    assert e.value.refusal is Refusal.INVALID_REQUEST
    assert await redis.dbsize() == 0


async def test_open_close_cancel(inv: Inventory, make_lot) -> None:
    lot = await make_lot(2, open=False)
    assert (await inv.reserve(lot.lot_id, "u", 1, "r1")).code is Refusal.NOT_OPEN
    assert (await inv.open(lot.lot_id)).state is LotState.OPEN
    assert (await inv.reserve(lot.lot_id, "u", 1, "r2")).ok
    assert (await inv.close(lot.lot_id)).state is LotState.CLOSED
    assert (await inv.reserve(lot.lot_id, "u2", 1, "r3")).code is Refusal.CLOSED
    assert (await inv.open(lot.lot_id)).state is LotState.OPEN  # re-open
    assert (await inv.cancel(lot.lot_id)).state is LotState.CANCELLED
    with pytest.raises(InventoryError) as e:
        await inv.open(lot.lot_id)
    assert e.value.refusal is Refusal.CLOSED
    assert (await inv.reserve(lot.lot_id, "u3", 1, "r4")).code is Refusal.CLOSED
    for op in (inv.open, inv.close, inv.cancel):
        with pytest.raises(InventoryError) as e:
            await op("missing")
        assert e.value.refusal is Refusal.UNKNOWN_LOT


async def test_opens_and_closes_by_redis_time(inv: Inventory, make_lot) -> None:
    now = await inv.server_time_ms()
    lot = await make_lot(5, open=False, opens_at_ms=now + 1500, closes_at_ms=now + 4000)
    assert (await inv.reserve(lot.lot_id, "early", 1, "r")).code is Refusal.NOT_OPEN
    assert (await inv.get_lot(lot.lot_id)).state is LotState.SCHEDULED
    while await inv.server_time_ms() < now + 1500:
        await asyncio.sleep(0.05)
    res = await inv.reserve(lot.lot_id, "ontime", 1, "r")
    assert res.ok, res  # nobody called open()
    assert (await inv.get_lot(lot.lot_id)).state is LotState.OPEN
    while await inv.server_time_ms() < now + 4000:
        await asyncio.sleep(0.05)
    assert (await inv.reserve(lot.lot_id, "late", 1, "r")).code is Refusal.CLOSED
    assert (await inv.get_lot(lot.lot_id)).state is LotState.CLOSED


async def test_adjust_total(inv: Inventory, make_lot) -> None:
    lot = await make_lot(4, per_user_limit=4)
    res = await inv.reserve(lot.lot_id, "u", 3, "r")
    assert res.ok
    assert (await inv.adjust_total(lot.lot_id, 10)).levels == StockLevels(10, 7, 3, 0, 0)
    assert (await inv.adjust_total(lot.lot_id, 3)).levels == StockLevels(3, 0, 3, 0, 0)
    with pytest.raises(InventoryError) as e:
        await inv.adjust_total(lot.lot_id, 2)  # below held + sold
    assert e.value.refusal is Refusal.BELOW_COMMITTED
    for bad in (-1, 1.0, "5", True, 10**12):
        with pytest.raises(InventoryError) as e:
            await inv.adjust_total(lot.lot_id, bad)
        assert e.value.refusal is Refusal.INVALID_REQUEST
    assert await inv.snapshot(lot.lot_id) == StockLevels(3, 0, 3, 0, 0)
    with pytest.raises(InventoryError) as e:
        await inv.adjust_total("missing", 5)
    assert e.value.refusal is Refusal.UNKNOWN_LOT
    assert (await inv.audit(lot.lot_id)).ok
