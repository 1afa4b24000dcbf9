"""Turning a held reservation into an order, exactly once.

    begin_payment (hold locked, cannot expire mid-charge) -> charge -> confirm -> order

Decline -> abort_payment (the hold stays until it expires; the viewer may retry). A timeout -> ask
the provider what happened before deciding. Charged but confirm failed -> refund and a REFUNDED
order. The charge's idempotency key is the reservation, and one attempt record per reservation
(SET NX) serializes payers, so no path charges twice or sells one unit twice. `recover()` finishes
attempts a crashed node left half-way."""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from checkout import metrics
from checkout.ledger import Ledger, Order, OrderState
from checkout.payments import ChargeResult, ChargeStatus, InvalidCard, PaymentProvider, PaymentTimeout, validate_card
from checkout.shipping import validate_shipping
from checkout.ulid import new_ulid
from checkout.webhooks import Webhooks
from domain import Code, DomainError
from inventory import Inventory, LotState, ReservationState

log = logging.getLogger("hawker.checkout")

INFLIGHT = "checkout:inflight"  # zset: attempt key -> started ms (what recovery reads)
REFUND_RETRY = "checkout:refund-failed"  # zset: order id -> ms of the failed refund (recovery retries)

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+?[0-9 ()-]{6,20}$")

DECLINES = {
    ChargeStatus.DECLINED: (Code.PAYMENT_DECLINED, "the card was declined"),
    ChargeStatus.INSUFFICIENT_FUNDS: (Code.INSUFFICIENT_FUNDS, "the card has insufficient funds"),
    ChargeStatus.REQUIRES_ACTION: (Code.REQUIRES_ACTION, "the card needs an extra authentication step"),
}


# begin_payment refusals (inventory codes) as checkout codes; any other means the hold is not payable.
_BEGIN_REFUSALS = {
    "UNKNOWN_RESERVATION": Code.RESERVATION_NOT_FOUND,
    "UNKNOWN_LOT": Code.SALE_NOT_FOUND,
    "NOT_OWNER": Code.NOT_YOUR_RESERVATION,
    "SALE_CANCELLED": Code.SALE_CANCELLED,
    "TOO_MANY_ATTEMPTS": Code.TOO_MANY_ATTEMPTS,
    "EXPIRED": Code.RESERVATION_EXPIRED,
    "INVALID_REQUEST": Code.VALIDATION,
}
# A reservation in a final state, as the code that says so.
_FINAL = {ReservationState.SOLD: Code.RESERVATION_SOLD, ReservationState.RELEASED: Code.RESERVATION_RELEASED,
          ReservationState.EXPIRED: Code.RESERVATION_EXPIRED, ReservationState.CANCELLED: Code.RESERVATION_CANCELLED}


class CheckoutError(DomainError):
    """A refused payment or refund; `order` is set when one was recorded (and goes on the wire too)."""

    def __init__(self, code: Code, message: str = "", order: Order | None = None, **details: Any) -> None:
        if order is not None:
            details["order"] = order.to_dict()
        super().__init__(code, message, **details)
        self.order = order


@dataclass(frozen=True)
class PayRequest:
    user: str
    broadcast: str
    sale_id: str
    reservation_id: str
    card: Any
    contact: Any
    shipping: Any = None  # where a shipped product goes (checkout/shipping.py)
    requires_shipping: bool = False  # the product ships: `shipping` is required


def validate_contact(contact: Any) -> dict[str, str]:
    if not isinstance(contact, dict):
        raise CheckoutError(Code.VALIDATION, "contact must be an object", field="contact")
    allowed = {"name", "email", "phone", "address"}
    extra = set(contact) - allowed
    if extra:
        raise CheckoutError(Code.VALIDATION, f"unknown contact fields: {sorted(extra)}", field="contact")
    out: dict[str, str] = {}
    for name, required, limit in (("name", True, 100), ("email", True, 254), ("phone", False, 20), ("address", False, 300)):
        v = contact.get(name)
        if v is None or v == "":
            if required:
                raise CheckoutError(Code.VALIDATION, f"contact.{name} is required", field=f"contact.{name}")
            continue
        if not isinstance(v, str) or len(v) > limit or not v.strip() or not v.isprintable():
            raise CheckoutError(Code.VALIDATION, f"contact.{name} must be text of at most {limit} characters",
                                field=f"contact.{name}")
        out[name] = v.strip()
    if not _EMAIL.match(out["email"]):
        raise CheckoutError(Code.VALIDATION, "contact.email is not an email address", field="contact.email")
    if "phone" in out and not _PHONE.match(out["phone"]):
        raise CheckoutError(Code.VALIDATION, "contact.phone is not a phone number", field="contact.phone")
    return out


class Checkout:
    def __init__(self, redis: aioredis.Redis, inventory: Inventory, provider: PaymentProvider, *,
                 ledger: Ledger | None = None, webhooks: Webhooks | None = None) -> None:
        self.redis = redis
        self.inv = inventory
        self.provider = provider
        self.ledger = ledger or Ledger(redis)
        self.webhooks = webhooks
        self.attempt_ttl_s = inventory.payment_grace_s + 24 * 3600
        # False for the sandbox (test cards): every order and webhook says so
        self.livemode = bool(getattr(provider, "livemode", True))

    @staticmethod
    def _attempt_key(sale_id: str, rid: str) -> str:
        return f"checkout:attempt:{sale_id}:{rid}"

    async def pay(self, req: PayRequest) -> Order:
        contact = validate_contact(req.contact)
        shipping = validate_shipping(req.shipping, required=req.requires_shipping)  # ShippingInvalid: VALIDATION
        try:
            validate_card(req.card)
        except InvalidCard as exc:
            raise CheckoutError(Code.INVALID_CARD, str(exc), field="card") from None
        res = await self.inv.get_reservation(req.sale_id, req.reservation_id)
        if res is None:
            raise CheckoutError(Code.RESERVATION_NOT_FOUND, "no such reservation")
        if res.user != req.user:
            raise CheckoutError(Code.NOT_YOUR_RESERVATION, "the reservation belongs to someone else")
        existing = await self.ledger.of_reservation(req.sale_id, req.reservation_id)
        if existing is not None:
            return self._finished(existing)
        lot = await self.inv.get_lot(req.sale_id)
        if lot is None:
            raise CheckoutError(Code.SALE_NOT_FOUND, "no such sale")
        if lot.state == LotState.CANCELLED:  # the scripts refuse it atomically too (SALE_CANCELLED)
            raise CheckoutError(Code.SALE_CANCELLED, "the sale was cancelled")
        if res.state not in (ReservationState.HELD, ReservationState.PAYING):
            raise CheckoutError(_FINAL.get(res.state, Code.RESERVATION_NOT_HELD), f"the reservation is {res.state.value.lower()}")

        # One payer per reservation at a time; the order id is fixed before anything is charged.
        order_id = "o_" + new_ulid()
        key = self._attempt_key(req.sale_id, req.reservation_id)
        started = int(time.time() * 1000)
        attempt = {"state": "charging", "user": req.user, "broadcast": req.broadcast, "order_id": order_id,
                   "contact": contact, "started": started, "charge_key": ""}
        if shipping:
            attempt["shipping"] = shipping
        # Indexed first (NX keeps a running attempt's score), so a crash can leave an index entry
        # without a record (recovery drops it) but never a record recovery cannot find.
        await self.redis.zadd(INFLIGHT, {key: started}, nx=True)
        if not await self.redis.set(key, orjson.dumps(attempt), nx=True, ex=self.attempt_ttl_s):
            raise CheckoutError(Code.PAYMENT_IN_PROGRESS, "a payment for this reservation is already running")
        # The provider's idempotency key is the reservation plus a generation that moves on only after a
        # definite refusal (a declined key stays declined at the provider, so a new card needs a new key).
        # After a timeout with no charge found the generation stays: if the lost charge lands late, the
        # retry meets it at the provider instead of charging again.
        gen = int(await self.redis.get(key + ":n") or 1)
        charge_key = f"{req.sale_id}:{req.reservation_id}:{gen}"
        attempt["charge_key"] = charge_key
        await self.redis.set(key, orjson.dumps(attempt), ex=self.attempt_ttl_s)
        t0 = time.perf_counter()
        try:
            begun = await self.inv.begin_payment(req.sale_id, req.reservation_id, req.user)
            if not begun.ok:
                await self._drop(key)
                refused = _BEGIN_REFUSALS.get(begun.code.value if begun.code else "", Code.RESERVATION_NOT_HELD)
                raise CheckoutError(refused, begun.message or refused.value)
            amount = lot.unit_price * res.qty
            try:
                charge = await self.provider.charge(key=charge_key, amount=amount,
                                                    currency=lot.currency, card=req.card)
            except InvalidCard as exc:  # the provider refused the details before charging anything
                await self.inv.abort_payment(req.sale_id, req.reservation_id)
                await self._drop(key)
                raise CheckoutError(Code.INVALID_CARD, str(exc), field="card") from None
            except PaymentTimeout:
                metrics.PAYMENTS.labels("timeout").inc()
                found = await self.provider.status(charge_key)
                if found is None:  # nothing happened: the hold goes back to HELD, retry is safe
                    await self.inv.abort_payment(req.sale_id, req.reservation_id)
                    await self._drop(key)
                    raise CheckoutError(Code.PAYMENT_TIMEOUT, "the payment provider did not answer; try again") from None
                charge = found
            if not charge.succeeded:
                await self.redis.set(key + ":n", gen + 1, ex=self.attempt_ttl_s)
                await self.inv.abort_payment(req.sale_id, req.reservation_id)
                await self._drop(key)
                declined, message = DECLINES.get(charge.status, (Code.PAYMENT_FAILED, "the payment failed"))
                metrics.PAYMENTS.labels(charge.status.value).inc()
                raise CheckoutError(declined, message)
            metrics.PAYMENTS.labels("succeeded").inc()
            return self._finished(await self._settle(req.sale_id, req.reservation_id, attempt, charge, lot.unit_price, res.qty))
        finally:
            metrics.PAYMENT_LATENCY.observe(time.perf_counter() - t0)

    async def _settle(self, sale_id: str, rid: str, attempt: dict[str, Any], charge: ChargeResult, unit_price: int,
                      qty: int) -> Order:
        """Charged: confirm and record the order, or refund and record a REFUNDED one."""
        key = self._attempt_key(sale_id, rid)
        attempt = attempt | {"state": "charged", "charge_id": charge.charge_id}
        await self.redis.set(key, orjson.dumps(attempt), ex=self.attempt_ttl_s)
        confirmed = await self.inv.confirm(sale_id, rid, attempt["order_id"])
        now = await self.inv.server_time_ms()
        state, reason = OrderState.PAID, ""
        if not confirmed.ok:
            reason = confirmed.code.value if confirmed.code else "CONFIRM_FAILED"
            log.warning("charged %s but confirm of %s/%s failed (%s): refunding", charge.charge_id, sale_id, rid, reason)
            state = OrderState.REFUNDED if await self._refund_at_provider(charge.charge_id) else OrderState.REFUND_FAILED
        order = Order(id=attempt["order_id"], user=attempt["user"], broadcast=attempt["broadcast"], sale_id=sale_id,
                      reservation_id=rid, qty=qty, unit_price=unit_price, total=unit_price * qty,
                      currency=charge.currency, state=state, charge_id=charge.charge_id, created_at=now,
                      updated_at=now, contact=attempt.get("contact", {}), reason=reason, livemode=self.livemode,
                      shipping=attempt.get("shipping", {}))
        if state == OrderState.REFUND_FAILED:  # indexed first: a crash now cannot lose the retry
            await self.redis.zadd(REFUND_RETRY, {order.id: now})
        order, created = await self.ledger.create(order)
        await self.redis.set(key, orjson.dumps(attempt | {"state": "done"}), ex=self.attempt_ttl_s)
        await self.redis.zrem(INFLIGHT, key)
        if created:
            metrics.ORDERS.labels(order.state.value).inc()
            if order.state == OrderState.PAID:
                metrics.REVENUE.labels(order.currency).inc(order.total)
            if self.webhooks is not None and order.state != OrderState.REFUND_FAILED:  # told once refunded
                kind = "order.created" if order.state == OrderState.PAID else "order.refunded"
                await self.webhooks.emit(kind, order.broadcast, {"order": order.to_dict()}, event_id=f"{kind}:{order.id}")
        return order

    async def _refund_at_provider(self, charge_id: str) -> bool:
        """True once the provider says the charge is refunded. A False answer, a timeout or any
        provider error is a failed refund: recorded as such and retried by recover()."""
        try:
            return bool(await self.provider.refund(charge_id))
        except Exception:  # noqa: BLE001 - whatever the provider did, the money is not back yet
            log.warning("refund of %s failed at the provider", charge_id, exc_info=True)
            return False

    @staticmethod
    def _finished(order: Order) -> Order:
        if order.state == OrderState.REFUND_FAILED:
            raise CheckoutError(Code.REFUND_FAILED, "the payment could not be confirmed and its refund failed "
                                "at the provider; it is retried automatically", order=order)
        if order.state == OrderState.REFUNDED:
            raise CheckoutError(Code.PAYMENT_REFUNDED, "the payment was refunded because the hold could not be "
                                "confirmed", order=order)
        return order

    async def _drop(self, key: str) -> None:
        """Forget an attempt that decided nothing (declined, not charged): the viewer may pay again."""
        await self.redis.delete(key)
        await self.redis.zrem(INFLIGHT, key)

    async def recover(self, older_than_ms: int = 30_000, limit: int = 500) -> int:
        """Finish attempts a crashed node left: ask the provider, then confirm, refund or abort;
        then retry refunds the provider failed. Reads only its two indexes (no key scan); one node
        at a time works on an attempt or an order."""
        fixed = await self.retry_failed_refunds(limit)
        now = int(time.time() * 1000)
        for member in await self.redis.zrangebyscore(INFLIGHT, 0, now - older_than_ms, start=0, num=limit):
            k = member.decode() if isinstance(member, bytes) else str(member)
            lock = f"checkout:recovering:{k}"
            if not await self.redis.set(lock, 1, nx=True, ex=60):
                continue  # another node is on it
            try:
                fixed += await self._recover_one(k)
            finally:
                await self.redis.delete(lock)
        return fixed

    async def _recover_one(self, k: str) -> int:
        """One stale attempt: 1 if it was settled or aborted."""
        raw = await self.redis.get(k)
        attempt = orjson.loads(raw) if raw else None
        if attempt is None or attempt["state"] == "done":
            await self.redis.zrem(INFLIGHT, k)
            return 0
        _, _, rest = k.partition("checkout:attempt:")
        sale_id, _, rid = rest.rpartition(":")
        charge = await self.provider.status(attempt["charge_key"]) if attempt.get("charge_key") else None
        if charge is None or not charge.succeeded:
            if charge is not None:  # a definite refusal: the next attempt needs a fresh provider key
                gen = int(attempt["charge_key"].rsplit(":", 1)[1])
                await self.redis.set(f"{k}:n", gen + 1, ex=self.attempt_ttl_s)
            await self.inv.abort_payment(sale_id, rid)
            await self._drop(k)
        else:
            res = await self.inv.get_reservation(sale_id, rid)
            lot = await self.inv.get_lot(sale_id)
            qty = res.qty if res else 1
            price = lot.unit_price if lot else charge.amount // max(1, qty)
            await self._settle(sale_id, rid, attempt, charge, price, qty)
        return 1

    async def retry_failed_refunds(self, limit: int = 500) -> int:
        """Refunds the provider failed (REFUND_FAILED orders) are asked for again; how many went through."""
        done = 0
        now = int(time.time() * 1000)
        # withscores: (member, score) pairs; redis-py's return type does not narrow on the flag
        pairs = cast("list[tuple[bytes | str, float]]", await self.redis.zrange(REFUND_RETRY, 0, limit - 1, withscores=True))
        for member, since in pairs:
            oid = member.decode() if isinstance(member, bytes) else member
            lock = f"checkout:refunding:{oid}"
            if not await self.redis.set(lock, 1, nx=True, ex=60):
                continue
            try:
                order = await self.ledger.get(oid)
                if order is None or order.state != OrderState.REFUND_FAILED:
                    if now - since >= 60_000:  # younger: indexed just before the order is written
                        await self.redis.zrem(REFUND_RETRY, oid)
                    continue
                if await self._refund_at_provider(order.charge_id):
                    await self._mark_refunded(order, order.reason or "refunded")
                    done += 1
            finally:
                await self.redis.delete(lock)
        return done

    async def refund(self, order_id: str, reason: str = "refunded") -> Order:
        """A merchant-initiated refund of a paid order (the unit stays sold: goods handling is theirs).
        When the provider fails, the order is REFUND_FAILED (502 REFUND_FAILED) and retried."""
        order = await self.ledger.get(order_id)
        if order is None:
            raise CheckoutError(Code.ORDER_NOT_FOUND, "no such order")
        if order.state == OrderState.REFUNDED:
            return order
        if not await self._refund_at_provider(order.charge_id):
            now = await self.inv.server_time_ms()
            await self.redis.zadd(REFUND_RETRY, {order_id: now})  # indexed first, as above
            failed = await self.ledger.set_state(order_id, OrderState.REFUND_FAILED, now_ms=now, reason=reason)
            raise CheckoutError(Code.REFUND_FAILED, "the provider did not refund the payment; it is retried "
                                "automatically", order=failed)
        return await self._mark_refunded(order, reason)

    async def _mark_refunded(self, order: Order, reason: str) -> Order:
        updated = await self.ledger.set_state(order.id, OrderState.REFUNDED, now_ms=await self.inv.server_time_ms(),
                                              reason=reason)
        await self.redis.zrem(REFUND_RETRY, order.id)
        assert updated is not None
        metrics.ORDERS.labels("REFUNDED").inc()
        if self.webhooks is not None:
            await self.webhooks.emit("order.refunded", order.broadcast, {"order": updated.to_dict()},
                                     event_id=f"order.refunded:{order.id}")
        return updated
