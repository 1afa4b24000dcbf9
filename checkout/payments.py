"""Payment providers: a small Protocol and the built-in deterministic `sandbox` provider.

A real provider (Stripe, Toss Payments, Adyen...) plugs in by implementing `PaymentProvider`:
charge with an idempotency key (we pass the reservation id, so a retried charge can never charge
twice), look a charge up by that key after a timeout, and refund. See docs/checkout.md."""
from __future__ import annotations

import asyncio
import importlib
import re
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis

from checkout.ulid import new_ulid


class ChargeStatus(str, Enum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    REQUIRES_ACTION = "requires_action"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    charge_id: str
    amount: int
    currency: str

    @property
    def succeeded(self) -> bool:
        return self.status in (ChargeStatus.SUCCEEDED, ChargeStatus.REFUNDED)


class PaymentTimeout(Exception):
    """The provider did not answer in time: the charge may or may not have happened."""


class InvalidCard(ValueError):
    """The card details are malformed (not a decline: nothing was sent to the provider)."""


class PaymentProvider(Protocol):
    name: str
    livemode: bool  # False for a provider whose charges move no money (test mode); True if absent

    async def charge(self, *, key: str, amount: int, currency: str, card: dict[str, Any]) -> ChargeResult:
        """Charge once per `key`; a retry with the same key returns the first charge. May raise
        PaymentTimeout or InvalidCard."""

    async def status(self, key: str) -> ChargeResult | None:
        """The charge made with `key`, or None if there is none."""

    async def refund(self, charge_id: str) -> bool:
        """Refund a succeeded charge in full; True once refunded (idempotent)."""


# The sandbox's test cards, as payment platforms document theirs.
TEST_CARDS: dict[str, tuple[ChargeStatus, bool]] = {
    "4242424242424242": (ChargeStatus.SUCCEEDED, False),
    "4000000000000002": (ChargeStatus.DECLINED, False),
    "4000000000009995": (ChargeStatus.INSUFFICIENT_FUNDS, False),
    "4000000000000119": (ChargeStatus.SUCCEEDED, True),  # succeeds, but the answer is lost (timeout)
    "4000000000003220": (ChargeStatus.REQUIRES_ACTION, False),
}

_EXP = re.compile(r"^(\d{1,2})\s*/\s*(\d{2}|\d{4})$")


def validate_card(card: Any) -> str:
    """The card number if the card is well-formed (Luhn, expiry in the future, CVC), else InvalidCard."""
    if not isinstance(card, dict):
        raise InvalidCard("card must be an object with number, exp and cvc")
    number = re.sub(r"[\s-]", "", str(card.get("number", "")))
    if not number.isdigit() or not 12 <= len(number) <= 19 or not _luhn(number):
        raise InvalidCard("the card number is not valid")
    m = _EXP.match(str(card.get("exp", "")).strip())
    if not m:
        raise InvalidCard("exp must be MM/YY")
    month, year = int(m.group(1)), int(m.group(2))
    year = year + 2000 if year < 100 else year
    now = time.gmtime()
    if not 1 <= month <= 12 or (year, month) < (now.tm_year, now.tm_mon):
        raise InvalidCard("the card has expired")
    cvc = str(card.get("cvc", ""))
    if not cvc.isdigit() or len(cvc) not in (3, 4):
        raise InvalidCard("cvc must be 3 or 4 digits")
    return number


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class SandboxProvider:
    """Deterministic, offline, and durable: charges live in Redis, so a crashed checkout can ask
    after a restart whether its charge went through - exactly what a real provider allows."""

    name = "sandbox"
    livemode = False  # test cards: every order and webhook says livemode=false

    def __init__(self, redis: aioredis.Redis, *, timeout_delay_s: float = 0.05) -> None:
        self.redis = redis
        self.timeout_delay_s = timeout_delay_s
        self.charges_made = 0  # counted for tests: a retry must never add one

    def _key(self, key: str) -> str:
        return f"sandbox:charge:{key}"

    async def charge(self, *, key: str, amount: int, currency: str, card: dict[str, Any]) -> ChargeResult:
        number = validate_card(card)
        status, lose_answer = TEST_CARDS.get(number, (ChargeStatus.SUCCEEDED, False))
        result = ChargeResult(status, "ch_" + new_ulid(), amount, currency)
        stored = {"status": status.value, "charge_id": result.charge_id, "amount": amount, "currency": currency}
        if await self.redis.set(self._key(key), orjson.dumps(stored), nx=True, ex=7 * 24 * 3600):
            await self.redis.set(f"sandbox:by-id:{result.charge_id}", key, ex=7 * 24 * 3600)
            if status == ChargeStatus.SUCCEEDED:
                self.charges_made += 1
        else:
            earlier = await self.status(key)
            if earlier is None:  # the earlier charge's record expired between SET NX and GET: charge anew
                return await self.charge(key=key, amount=amount, currency=currency, card=card)
            result = earlier
        if lose_answer:
            await asyncio.sleep(self.timeout_delay_s)
            raise PaymentTimeout("the sandbox provider did not answer (test card 4000 0000 0000 0119)")
        return result

    async def status(self, key: str) -> ChargeResult | None:
        raw = await self.redis.get(self._key(key))
        if raw is None:
            return None
        d = orjson.loads(raw)
        return ChargeResult(ChargeStatus(d["status"]), d["charge_id"], int(d["amount"]), d["currency"])

    async def refund(self, charge_id: str) -> bool:
        key = await self.redis.get(f"sandbox:by-id:{charge_id}")
        if key is None:
            return False
        k = self._key(key.decode() if isinstance(key, bytes) else key)
        raw = await self.redis.get(k)
        if raw is None:
            return False
        d = orjson.loads(raw)
        if d["status"] not in (ChargeStatus.SUCCEEDED.value, ChargeStatus.REFUNDED.value):
            return False
        d["status"] = ChargeStatus.REFUNDED.value
        await self.redis.set(k, orjson.dumps(d), keepttl=True)
        return True


def load_provider(spec: str, redis: aioredis.Redis) -> PaymentProvider:
    """The provider named by `spec` (HAWKER_PAYMENT_PROVIDER): `sandbox`, or `package.module:factory`
    where `factory(redis)` returns a PaymentProvider (it reads its own API keys, e.g. from the
    environment). There is no default: test payments must be a choice, never an accident. A bad
    or empty spec fails at start-up, not at the first payment."""
    if spec == "sandbox":
        return SandboxProvider(redis)
    if not spec:
        raise ValueError("no payment provider chosen: set HAWKER_PAYMENT_PROVIDER to 'sandbox' (test cards) "
                         "or 'package.module:factory'")
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"payment provider must be 'sandbox' or 'package.module:factory', not {spec!r}")
    factory = getattr(importlib.import_module(module), attr)
    provider: PaymentProvider = factory(redis)  # a plug-in: its shape is checked just below
    for method in ("charge", "status", "refund"):
        if not callable(getattr(provider, method, None)):
            raise TypeError(f"{spec} made {provider!r}, which has no {method}()")
    return provider
