"""The payment flow against a real Redis and Inventory: every path ends in one order or none."""
from __future__ import annotations

import asyncio

import pytest

from checkout import ChargeStatus, Checkout, CheckoutError, Ledger, OrderState, PaymentTimeout, SandboxProvider
from inventory import Inventory, ReservationState
from tests.checkout.conftest import DECLINE_CARD, OK_CARD, TIMEOUT_CARD, pay_after_the_grace, pay_request


async def test_happy_path_makes_one_paid_order(checkout, inv, provider, make_lot, hold):
    lot = await make_lot(total=3)
    rid = await hold(lot, "alice", 2)
    order = await checkout.pay(pay_request(lot, rid))
    assert order.state == OrderState.PAID
    assert (order.qty, order.unit_price, order.total, order.currency) == (2, 12900, 25800, "KRW")
    res = await inv.get_reservation(lot, rid)
    assert res.state == ReservationState.SOLD and res.order_id == order.id
    assert provider.charges_made == 1
    assert (await inv.snapshot(lot)).sold == 2
    assert (await inv.audit(lot)).ok
    assert [o.id for o in await checkout.ledger.of_lot(lot)] == [order.id]
    assert [o.id for o in await checkout.ledger.of_user("alice")] == [order.id]
    # paying again for the same reservation returns the same order and charges nothing more
    again = await checkout.pay(pay_request(lot, rid))
    assert again.id == order.id and provider.charges_made == 1
    assert await checkout.recover(older_than_ms=0) == 0  # nothing left in flight for recovery


async def test_decline_then_retry(checkout, inv, provider, make_lot, hold):
    lot = await make_lot()
    rid = await hold(lot)
    with pytest.raises(CheckoutError) as e:
        await checkout.pay(pay_request(lot, rid, card=DECLINE_CARD))
    assert (e.value.status, e.value.code) == (402, "PAYMENT_DECLINED")
    res = await inv.get_reservation(lot, rid)
    assert res.state == ReservationState.HELD  # the hold stays for a retry
    assert await checkout.ledger.of_lot(lot) == []
    order = await checkout.pay(pay_request(lot, rid, card=OK_CARD))
    assert order.state == OrderState.PAID and provider.charges_made == 1
    assert await checkout.recover(older_than_ms=0) == 0


@pytest.mark.parametrize("number,code", [("4000000000009995", "INSUFFICIENT_FUNDS"), ("4000000000003220", "REQUIRES_ACTION")])
async def test_other_refusals_leave_the_hold(checkout, inv, make_lot, hold, number, code):
    lot = await make_lot()
    rid = await hold(lot)
    with pytest.raises(CheckoutError) as e:
        await checkout.pay(pay_request(lot, rid, card={"number": number, "exp": "01/40", "cvc": "999"}))
    assert e.value.code == code
    assert (await inv.get_reservation(lot, rid)).state == ReservationState.HELD


async def test_timeout_then_status_says_succeeded(checkout, inv, provider, make_lot, hold):
    lot = await make_lot()
    rid = await hold(lot)
    order = await checkout.pay(pay_request(lot, rid, card=TIMEOUT_CARD))
    assert order.state == OrderState.PAID
    assert provider.charges_made == 1
    assert (await inv.get_reservation(lot, rid)).state == ReservationState.SOLD


class LostRequestProvider(SandboxProvider):
    """The first charge times out before the provider recorded anything; it lands late, after the
    checkout already asked for its status - the worst case a real provider can produce."""

    def __init__(self, redis) -> None:
        super().__init__(redis)
        self.keys: list[str] = []
        self.late: dict | None = None

    async def charge(self, **kw):
        self.keys.append(kw["key"])
        if self.late is None:
            self.late = kw
            raise PaymentTimeout("lost on the way")
        return await super().charge(**kw)


async def test_timeout_with_no_charge_then_retry_charges_once(redis, inv, make_lot, hold):
    provider = LostRequestProvider(redis)
    co = Checkout(redis, inv, provider)
    lot = await make_lot()
    rid = await hold(lot)
    with pytest.raises(CheckoutError) as e:
        await co.pay(pay_request(lot, rid))
    assert (e.value.status, e.value.code) == (504, "PAYMENT_TIMEOUT")
    assert (await inv.get_reservation(lot, rid)).state == ReservationState.HELD  # retry allowed
    await SandboxProvider.charge(provider, **provider.late)  # the lost charge lands at the provider now
    order = await co.pay(pay_request(lot, rid))  # the retry meets that charge instead of making another
    assert order.state == OrderState.PAID
    assert provider.keys[0] == provider.keys[1] and provider.charges_made == 1
    assert (await inv.get_reservation(lot, rid)).state == ReservationState.SOLD


async def test_a_new_card_after_a_decline_gets_a_fresh_provider_key(redis, inv, make_lot, hold):
    provider = LostRequestProvider(redis)
    provider.late = {}  # no lost request in this test
    co = Checkout(redis, inv, provider)
    lot = await make_lot()
    rid = await hold(lot)
    with pytest.raises(CheckoutError):
        await co.pay(pay_request(lot, rid, card=DECLINE_CARD))
    assert (await co.pay(pay_request(lot, rid))).state == OrderState.PAID
    assert provider.keys[0] != provider.keys[1] and provider.charges_made == 1


async def test_concurrent_payers_of_one_reservation_make_one_order(checkout, provider, make_lot, hold):
    lot = await make_lot()
    rid = await hold(lot)
    results = await asyncio.gather(*(checkout.pay(pay_request(lot, rid)) for _ in range(5)), return_exceptions=True)
    orders = {r.id for r in results if not isinstance(r, BaseException)}
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(orders) == 1
    assert all(isinstance(e, CheckoutError) and e.code == "PAYMENT_IN_PROGRESS" for e in errors)
    assert provider.charges_made == 1
    assert len(await checkout.ledger.of_lot(lot)) == 1


async def test_two_buyers_racing_for_the_last_unit_make_one_order(checkout, inv, provider, make_lot):
    lot = await make_lot(total=1)
    r1, r2 = await asyncio.gather(inv.reserve(lot, "alice", 1, "a"), inv.reserve(lot, "bob", 1, "b"))
    winner = r1 if r1.ok else r2
    loser_user = "bob" if r1.ok else "alice"
    assert r1.ok != r2.ok
    order = await checkout.pay(pay_request(lot, winner.reservation.id, user=winner.reservation.user))
    with pytest.raises(CheckoutError) as e:  # the loser has no reservation to pay for
        await checkout.pay(pay_request(lot, winner.reservation.id, user=loser_user))
    assert e.value.code == "NOT_YOUR_RESERVATION"
    assert [o.id for o in await checkout.ledger.of_lot(lot)] == [order.id]
    assert (await inv.snapshot(lot)).sold == 1 and provider.charges_made == 1


class SlowProvider(SandboxProvider):
    """A provider that takes longer to charge than the hold lasts."""

    async def charge(self, **kw):
        await asyncio.sleep(2.5)
        return await super().charge(**kw)


async def test_a_hold_cannot_expire_during_payment(redis, make_lot, hold):
    inv = Inventory(redis, payment_grace_s=30)
    co = Checkout(redis, inv, SlowProvider(redis))
    lot = await make_lot(hold_s=1)
    rid = await hold(lot)
    order = await co.pay(pay_request(lot, rid))  # the 1 s hold is long gone by the time the charge returns
    assert order.state == OrderState.PAID
    assert (await inv.get_reservation(lot, rid)).state == ReservationState.SOLD
    assert (await inv.audit(lot)).ok


async def test_charged_but_the_hold_ran_out_is_refunded(redis, make_lot, hold):
    """A charge slower than the payment grace: confirm is refused, so the charge is refunded at once."""
    provider = SlowProvider(redis)
    co, lot, rid, err = await pay_after_the_grace(redis, provider, make_lot, hold)
    assert (err.status, err.code) == (409, "PAYMENT_REFUNDED")
    assert err.order is not None and err.order.state == OrderState.REFUNDED
    charge = await provider.status(f"{lot}:{rid}:1")
    assert charge is not None and charge.status == ChargeStatus.REFUNDED
    assert [o.state for o in await co.ledger.of_lot(lot)] == [OrderState.REFUNDED]
    await co.inv.expire_due(lot)
    assert (await co.inv.snapshot(lot)).sold == 0 and (await co.inv.audit(lot)).ok
    assert await co.recover(older_than_ms=0) == 0  # nothing half-way for recovery


class Crash(Exception):
    pass


class CrashingCheckout(Checkout):
    """Dies right after the provider charged, before confirming (a node killed mid-payment)."""

    async def _settle(self, *a, **kw):
        raise Crash()


async def test_crash_between_charge_and_confirm_is_refunded_by_recovery(redis, make_lot, hold):
    inv = Inventory(redis, payment_grace_s=1)
    provider = SandboxProvider(redis)
    lot = await make_lot(hold_s=1)
    rid = await hold(lot)
    with pytest.raises(Crash):
        await CrashingCheckout(redis, inv, provider).pay(pay_request(lot, rid))
    await asyncio.sleep(2.2)  # the payment grace runs out while the node is down
    survivor = Checkout(redis, inv, SandboxProvider(redis), ledger=Ledger(redis))
    assert await survivor.recover(older_than_ms=0) == 1
    orders = await survivor.ledger.of_lot(lot)
    assert len(orders) == 1 and orders[0].state == OrderState.REFUNDED
    charge = await provider.status(f"{lot}:{rid}:1")
    assert charge is not None and charge.status == ChargeStatus.REFUNDED
    await inv.expire_due(lot)
    levels = await inv.snapshot(lot)
    assert (levels.sold, levels.held, levels.available) == (0, 0, 3)
    assert (await inv.audit(lot)).ok
    with pytest.raises(CheckoutError) as e:  # the viewer retrying sees what happened
        await survivor.pay(pay_request(lot, rid))
    assert e.value.code == "PAYMENT_REFUNDED"


async def test_crash_before_any_charge_is_aborted_by_recovery(redis, inv, make_lot, hold):
    class CrashBeforeCharge(SandboxProvider):
        async def charge(self, **kw):
            raise Crash()

    lot = await make_lot()
    rid = await hold(lot)
    with pytest.raises(Crash):
        await Checkout(redis, inv, CrashBeforeCharge(redis)).pay(pay_request(lot, rid))
    assert (await inv.get_reservation(lot, rid)).state == ReservationState.PAYING
    co = Checkout(redis, inv, SandboxProvider(redis))
    assert await co.recover(older_than_ms=0) == 1
    assert (await inv.get_reservation(lot, rid)).state == ReservationState.HELD
    assert (await co.pay(pay_request(lot, rid))).state == OrderState.PAID


@pytest.mark.parametrize("change,code,status", [
    ({"card": {"number": "1234", "exp": "12/39", "cvc": "1"}}, "INVALID_CARD", 422),
    ({"card": {"number": "4242424242424242", "exp": "01/20", "cvc": "123"}}, "INVALID_CARD", 422),
    ({"card": "4242"}, "INVALID_CARD", 422),
    ({"contact": {"name": "x"}}, "VALIDATION", 422),
    ({"contact": {"name": "x", "email": "not-an-email"}}, "VALIDATION", 422),
    ({"contact": {"name": "x", "email": "a@b.co", "evil": 1}}, "VALIDATION", 422),
    ({"contact": None}, "VALIDATION", 422),
    ({"user": "mallory"}, "NOT_YOUR_RESERVATION", 403),
    ({"reservation_id": "r999"}, "RESERVATION_NOT_FOUND", 404),
])
async def test_bad_input_changes_nothing(checkout, inv, provider, make_lot, hold, change, code, status):
    lot = await make_lot()
    rid = await hold(lot)
    args = {"user": "alice", "card": OK_CARD, "contact": {"name": "Kim", "email": "k@example.test"}, "reservation_id": rid}
    args.update(change)
    before = await inv.snapshot(lot)
    with pytest.raises(CheckoutError) as e:
        await checkout.pay(pay_request(lot, args["reservation_id"], user=args["user"], card=args["card"], contact=args["contact"]))
    assert (e.value.code, e.value.status) == (code, status)
    assert await inv.snapshot(lot) == before
    assert (await inv.get_reservation(lot, rid)).state == ReservationState.HELD
    assert await checkout.ledger.of_lot(lot) == [] and provider.charges_made == 0
