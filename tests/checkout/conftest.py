"""Checkout fixtures: a real Inventory on the test Redis, a lot that is open now, the sandbox."""
from __future__ import annotations

import uuid

import pytest

from checkout import Checkout, CheckoutError, Ledger, PayRequest, SandboxProvider
from inventory import Inventory, LotSpec
from tests.checkout.hooks import Receiver, Recorder, served

OK_CARD = {"number": "4242 4242 4242 4242", "exp": "12/39", "cvc": "123"}
DECLINE_CARD = {"number": "4000000000000002", "exp": "12/39", "cvc": "123"}
TIMEOUT_CARD = {"number": "4000000000000119", "exp": "12/39", "cvc": "123"}
CONTACT = {"name": "Kim Minji", "email": "minji@example.test"}


@pytest.fixture
async def inv(redis):
    return Inventory(redis, payment_grace_s=30)


@pytest.fixture
def provider(redis):
    return SandboxProvider(redis)


@pytest.fixture
def checkout(redis, inv, provider):
    return Checkout(redis, inv, provider, ledger=Ledger(redis))


@pytest.fixture
def make_lot(inv):
    async def make(total: int = 3, limit: int = 2, hold_s: int = 60, price: int = 12900) -> str:
        lot_id = "lot-" + uuid.uuid4().hex[:8]
        now = await inv.server_time_ms()
        await inv.create_lot(LotSpec(lot_id, "SKU-1", total=total, unit_price=price, currency="KRW",
                                     per_user_limit=limit, hold_s=hold_s, opens_at_ms=now - 1000))
        return lot_id

    return make


@pytest.fixture
def hold(inv):
    async def make(lot_id: str, user: str = "alice", qty: int = 1) -> str:
        r = await inv.reserve(lot_id, user, qty, request_id=uuid.uuid4().hex)
        assert r.ok, r
        return r.reservation.id

    return make


def pay_request(lot_id: str, rid: str, user: str = "alice", card=OK_CARD, contact=CONTACT) -> PayRequest:
    return PayRequest(user=user, broadcast="b1", sale_id=lot_id, reservation_id=rid, card=card, contact=contact)


async def pay_after_the_grace(redis, provider, make_lot, hold) -> tuple[Checkout, str, str, CheckoutError]:
    """A payment whose charge outlives the hold and its 1 s payment grace (`provider` is slow):
    the checkout, lot, reservation and the CheckoutError pay raised."""
    co = Checkout(redis, Inventory(redis, payment_grace_s=1), provider)
    lot = await make_lot(hold_s=1)
    rid = await hold(lot)
    with pytest.raises(CheckoutError) as e:
        await co.pay(pay_request(lot, rid))
    return co, lot, rid, e.value


@pytest.fixture
async def receiver():
    """A verifying merchant endpoint (tests/checkout/hooks.py) served for the test."""
    async with served(Receiver()) as rec:
        yield rec


@pytest.fixture
async def recorder():
    """A merchant endpoint that keeps raw requests (tests/checkout/hooks.py) served for the test."""
    async with served(Recorder()) as rec:
        yield rec
