"""Auction fixtures: Auctions + Inventory on the flushed test Redis, and an auction factory."""
from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from auctions import Auction, Auctions, AuctionSpec
from inventory import Inventory

_ids = itertools.count(1)


@pytest.fixture
def inv(redis) -> Inventory:
    return Inventory(redis, payment_grace_s=60, max_extend_s=30)


@pytest.fixture
def auc(redis, inv: Inventory) -> Auctions:
    return Auctions(redis, inv, bid_rate=1000, bid_burst=1000, hold_s=10)


@pytest.fixture
def make_auction(auc: Auctions) -> Callable[..., Awaitable[Auction]]:
    """`await make_auction(start=True, start_price=1000, duration_ms=60_000, **spec_fields)`."""

    async def make(start: bool = True, **fields: Any) -> Auction:
        spec = AuctionSpec(auction_id=fields.pop("auction_id", f"a{next(_ids)}"), owner=fields.pop("owner", "b1"),
                           sku=fields.pop("sku", "SKU-1"), currency=fields.pop("currency", "USD"),
                           start_price=fields.pop("start_price", 1000),
                           duration_ms=fields.pop("duration_ms", 60_000), **fields)
        a = await auc.create(spec)
        if start:
            await auc.start(a.id)
            a = await auc.get(a.id)
        return a

    return make
