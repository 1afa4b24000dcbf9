"""Issue 13, commerce rows, at the checkout library: declines cannot pin a hold, a cancelled sale
cannot be paid (a charge in flight is refunded), a failed refund is recorded and retried, and
every order says whether real money moved (livemode)."""
from __future__ import annotations

import asyncio

import orjson
import pytest

from checkout import ChargeStatus, Checkout, CheckoutError, Ledger, OrderState, SandboxProvider, Webhooks
from checkout.egress import EgressPolicy
from checkout.payments import load_provider
from checkout.webhooks import STREAM
from inventory import Inventory, ReservationState
from tests.checkout.conftest import DECLINE_CARD, pay_after_the_grace, pay_request
from tests.checkout.test_egress import fixed


async def test_declines_cannot_pin_a_hold_and_the_fourth_attempt_is_refused(redis, make_lot, hold) -> None:
    inv = Inventory(redis, payment_grace_s=120)
    co = Checkout(redis, inv, SandboxProvider(redis))
    lot = await make_lot(hold_s=10)
    rid = await hold(lot)
    own = (await inv.get_reservation(lot, rid)).expires_at_ms
    for _ in range(3):
        with pytest.raises(CheckoutError) as e:
            await co.pay(pay_request(lot, rid, card=DECLINE_CARD))
        assert e.value.code == "PAYMENT_DECLINED"
        assert (await inv.get_reservation(lot, rid)).expires_at_ms == own  # not pushed out by the grace
    with pytest.raises(CheckoutError) as e:
        await co.pay(pay_request(lot, rid))  # even a good card: this hold has had its attempts
    assert (e.value.status, e.value.code) == (409, "TOO_MANY_ATTEMPTS")
    res = await inv.get_reservation(lot, rid)
    assert res.state == ReservationState.HELD and res.expires_at_ms == own and res.payment_attempts == 3
    assert await co.ledger.of_lot(lot) == [] and await co.recover(older_than_ms=0) == 0


class SlowProvider(SandboxProvider):
    async def charge(self, **kw):
        await asyncio.sleep(1.0)
        return await super().charge(**kw)


async def test_a_sale_cancelled_during_the_charge_is_refunded(redis, inv, make_lot, hold) -> None:
    provider = SlowProvider(redis)
    co = Checkout(redis, inv, provider)
    lot = await make_lot(total=2)
    rid = await hold(lot)
    paying = asyncio.create_task(co.pay(pay_request(lot, rid)))
    while (await inv.get_reservation(lot, rid)).state != ReservationState.PAYING:
        await asyncio.sleep(0.02)
    await inv.cancel(lot)  # the host cancels while the card is being charged
    with pytest.raises(CheckoutError) as e:
        await paying
    assert (e.value.status, e.value.code) == (409, "PAYMENT_REFUNDED")
    assert e.value.order is not None and e.value.order.state == OrderState.REFUNDED
    assert e.value.order.reason == "SALE_CANCELLED"
    assert (await provider.status(f"{lot}:{rid}:1")).status == ChargeStatus.REFUNDED
    levels = await inv.snapshot(lot)
    assert (levels.sold, levels.held, levels.available) == (0, 0, 2) and (await inv.audit(lot)).ok


async def test_a_cancelled_sale_refuses_payment_before_charging(redis, inv, provider, checkout, make_lot, hold) -> None:
    lot = await make_lot()
    rid = await hold(lot)
    await inv.cancel(lot)
    with pytest.raises(CheckoutError) as e:
        await checkout.pay(pay_request(lot, rid))
    assert (e.value.status, e.value.code) == (409, "SALE_CANCELLED")
    assert provider.charges_made == 0 and await checkout.ledger.of_lot(lot) == []


class RefundTrouble(SandboxProvider):
    """A provider whose refunds fail (False, or an exception) until `fixed`."""

    def __init__(self, redis, raise_error: bool = False) -> None:
        super().__init__(redis)
        self.fixed = False
        self.raise_error = raise_error
        self.refunds_asked = 0

    async def refund(self, charge_id: str) -> bool:
        self.refunds_asked += 1
        if not self.fixed:
            if self.raise_error:
                raise ConnectionError("provider down")
            return False
        return await super().refund(charge_id)


@pytest.mark.parametrize("raise_error", [False, True])
async def test_a_failed_merchant_refund_is_recorded_and_retried(redis, inv, make_lot, hold, raise_error) -> None:
    provider = RefundTrouble(redis, raise_error)
    co = Checkout(redis, inv, provider, ledger=Ledger(redis))
    lot = await make_lot()
    order = await co.pay(pay_request(lot, await hold(lot)))
    with pytest.raises(CheckoutError) as e:
        await co.refund(order.id)
    assert (e.value.status, e.value.code) == (502, "REFUND_FAILED")
    assert (await co.ledger.get(order.id)).state == OrderState.REFUND_FAILED  # not recorded as done
    assert await co.recover(older_than_ms=0) == 0  # still failing: stays REFUND_FAILED
    assert (await co.ledger.get(order.id)).state == OrderState.REFUND_FAILED
    provider.fixed = True
    assert await co.recover(older_than_ms=0) == 1
    assert (await co.ledger.get(order.id)).state == OrderState.REFUNDED
    assert (await provider.status(f"{lot}:{order.reservation_id}:1")).status == ChargeStatus.REFUNDED
    asked = provider.refunds_asked
    assert await co.recover(older_than_ms=0) == 0 and provider.refunds_asked == asked  # nothing left to retry


async def test_charged_unconfirmed_and_the_refund_failed(redis, make_lot, hold) -> None:
    """The charged-but-not-confirmed path: a failed refund is REFUND_FAILED, not REFUNDED."""

    class SlowAndNoRefund(RefundTrouble):
        async def charge(self, **kw):
            await asyncio.sleep(2.2)
            return await super().charge(**kw)

    provider = SlowAndNoRefund(redis)
    co, lot, rid, err = await pay_after_the_grace(redis, provider, make_lot, hold)
    assert (err.status, err.code) == (502, "REFUND_FAILED")
    assert err.order is not None and err.order.state == OrderState.REFUND_FAILED
    with pytest.raises(CheckoutError) as again:  # the buyer asking again hears the same
        await co.pay(pay_request(lot, rid))
    assert again.value.code == "REFUND_FAILED"
    provider.fixed = True
    assert await co.recover(older_than_ms=0) == 1
    assert [o.state for o in await co.ledger.of_lot(lot)] == [OrderState.REFUNDED]
    assert (await provider.status(f"{lot}:{rid}:1")).status == ChargeStatus.REFUNDED


async def test_orders_and_webhooks_carry_livemode(redis, inv, make_lot, hold) -> None:
    class LiveProvider(SandboxProvider):
        name = "live-test-double"
        livemode = True

    # merchant.example resolves (for this test only) to a public documentation address
    public = EgressPolicy.from_settings(False, "", lookup=fixed({"merchant.example": ["93.184.216.34"]}))
    hooks = Webhooks(redis, consumer="t", livemode=False, policy=public)
    await hooks.register("b1", "https://merchant.example/hooks", "whsec_0123456789abcdef")
    sandbox = Checkout(redis, inv, SandboxProvider(redis), webhooks=hooks)
    lot = await make_lot()
    test_order = await sandbox.pay(pay_request(lot, await hold(lot, "alice")))
    assert test_order.livemode is False and test_order.to_dict()["livemode"] is False
    entries = await redis.xrange(STREAM)
    body = orjson.loads(orjson.loads(entries[-1][1][b"d"])["body"])
    assert body["type"] == "order.created" and body["livemode"] is False
    assert body["data"]["order"]["livemode"] is False

    live = Checkout(redis, inv, LiveProvider(redis))
    assert (await live.pay(pay_request(lot, await hold(lot, "bob"), user="bob"))).livemode is True


def test_no_provider_is_no_default(redis) -> None:
    from live.config import Config

    assert Config().payment_provider == ""  # test payments are never the default
    with pytest.raises(ValueError, match="no payment provider"):
        load_provider("", redis)
    assert load_provider("sandbox", redis).livemode is False
