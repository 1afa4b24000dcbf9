"""Hawker checkout: held reservations become orders, exactly once.

Imports `inventory`, never `live/`. Parts:
- `service.Checkout` - the flow (begin_payment -> charge -> confirm -> order; decline, timeout,
  refund and crash recovery paths);
- `payments` - the `PaymentProvider` protocol and the offline, deterministic `SandboxProvider`;
- `idempotency.IdempotencyStore` - Idempotency-Key semantics for any mutating call;
- `ledger.Ledger` - the order ledger (one order per reservation, indexes, event stream);
- `webhooks.Webhooks` - signed merchant webhooks on a Redis stream consumer group.
"""
from checkout.idempotency import Claim, IdempotencyStore, fingerprint
from checkout.ledger import Ledger, Order, OrderState
from checkout.payments import TEST_CARDS, ChargeResult, ChargeStatus, PaymentProvider, PaymentTimeout, SandboxProvider
from checkout.service import Checkout, CheckoutError, PayRequest
from checkout.signature import sign, verify
from checkout.webhooks import EVENT_TYPES, Endpoint, WebhookError, Webhooks

__all__ = [
    "Checkout", "CheckoutError", "PayRequest", "IdempotencyStore", "Claim", "fingerprint", "Ledger", "Order",
    "OrderState", "PaymentProvider", "SandboxProvider", "ChargeResult", "ChargeStatus", "PaymentTimeout",
    "TEST_CARDS", "Webhooks", "WebhookError", "Endpoint", "EVENT_TYPES", "sign", "verify",
]
