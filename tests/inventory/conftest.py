"""Inventory fixtures: an Inventory on the flushed test Redis, and a lot factory."""
from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from inventory import Inventory, Lot, LotSpec

_ids = itertools.count(1)


@pytest.fixture
def inv(redis) -> Inventory:
    return Inventory(redis, payment_grace_s=60, max_extend_s=30)


@pytest.fixture
def make_lot(inv: Inventory) -> Callable[..., Awaitable[Lot]]:
    """`await make_lot(total=5, per_user_limit=2, open=True, **spec_fields)` -> an open lot."""

    async def make(total: int = 5, *, open: bool = True, **fields: Any) -> Lot:
        spec = LotSpec(lot_id=fields.pop("lot_id", f"lot{next(_ids)}"), sku=fields.pop("sku", "SKU-1"),
                       total=total, unit_price=fields.pop("unit_price", 1999),
                       currency=fields.pop("currency", "EUR"), **fields)
        lot = await inv.create_lot(spec)
        if open:
            lot = await inv.open(lot.lot_id)
        return lot

    return make


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0, step: float = 0.05) -> None:
    """Poll an async condition with a generous timeout (the machine is loaded)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError("condition not reached in time")
