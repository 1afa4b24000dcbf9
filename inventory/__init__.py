"""Hawker inventory: stock lots and atomic reservations in Redis that can never oversell.

A library with a small async API; it imports nothing else of Hawker's. Every state change is one
Lua script (one round trip, atomic, time from Redis `TIME`), every key of a lot shares the hash tag
`{lot:ID}` so it runs unchanged on Redis Cluster, and every change appends to a capped per-lot
stream (the audit trail and the hub's feed of live stock levels).

Usage::

    inv = Inventory(redis_client)                 # redis.asyncio.Redis (bytes or decoded replies)
    await inv.load_scripts()                      # optional: SCRIPT LOAD now (else on first NOSCRIPT)
    lot = await inv.create_lot(LotSpec("drop1", "SKU-1", total=100, unit_price=1999,
                                       currency="EUR", per_user_limit=2, hold_s=120,
                                       opens_at_ms=t_ms))
    r = await inv.reserve("drop1", "user-7", 1, request_id="click-123")
    if r.ok:   r.reservation.id, r.reservation.expires_at_ms
    else:      r.code  # Refusal.NOT_OPEN / CLOSED / SOLD_OUT / LIMIT_REACHED / INVALID_QTY / ...
    await inv.begin_payment("drop1", r.reservation.id, "user-7")   # HELD -> PAYING
    await inv.confirm("drop1", r.reservation.id, order_id="o-1")   # PAYING -> SOLD

Public API (all methods are coroutines unless noted):

- ``Inventory(redis, *, events_maxlen=10_000, payment_grace_s=120, max_extend_s=300,
  max_payment_attempts=3)``
- lots: ``create_lot(spec) -> Lot``, ``get_lot(lot_id) -> Lot | None``,
  ``adjust_total(lot_id, new_total) -> Lot``, ``open(lot_id) -> Lot``, ``close(lot_id) -> Lot``,
  ``cancel(lot_id) -> Lot``, ``list_lots() -> list[str]``. These raise ``InventoryError(code)``.
- reservations (never raise for bad input; return ``ReserveResult(ok, reservation, code, levels,
  message)``; ``message`` is a short English sentence, ``MESSAGES[code]``):
  ``reserve(lot_id, user, qty, request_id)``, ``extend(lot_id, reservation_id, user)``,
  ``release(lot_id, reservation_id, user)``, ``begin_payment(lot_id, reservation_id, user)``,
  ``confirm(lot_id, reservation_id, order_id)``, ``abort_payment(lot_id, reservation_id)``,
  ``get_reservation(lot_id, reservation_id) -> Reservation | None``,
  ``holds_of(lot_id, user) -> list[Reservation]`` (HELD, PAYING and SOLD ones).
- waitlist: ``join_waitlist(lot_id, user, qty) -> WaitlistResult(ok, position, code, levels)``.
- expiry: ``expire_due(lot_id, limit=500) -> int`` (also done lazily inside reserve and inside
  every op on a reservation that is due); ``sweep(lot_ids=None, limit=500) -> int`` runs
  expire_due on many lots (default: all of list_lots()) for a periodic sweeper task.
- personal data: ``user_reservations(lot_id, user) -> list[Reservation]`` (every state, an export),
  ``forget_user(lot_id, user, pseudonym) -> int`` (erasure: the user's reservations name the
  pseudonym, their request ids are forgotten, they leave the waitlist; the audit still adds up).
- reading: ``snapshot(lot_id) -> StockLevels | None``, ``audit(lot_id) -> AuditReport``,
  ``events_key(lot_id) -> str`` (plain method), ``read_events(lot_id, after_id="0-0", count=100,
  block_ms=None) -> list[StockEvent]``, ``server_time_ms() -> int`` (Redis TIME).

Semantics worth knowing:

- A lot sells when now (Redis clock) >= opens_at_ms, or after open(); it stops at closes_at_ms,
  close() or cancel(). get_lot() reports that effective state.
- create_lot is idempotent: the same spec again returns the lot as it is now; a different spec
  for an existing id raises InventoryError(LOT_EXISTS).
- reserve is idempotent per (user, request_id): a retry of a request that got a reservation returns
  that reservation (in its current state). A refusal changes nothing and is not remembered, so a
  retry of a refused request is evaluated afresh.
- Per-user limit counts HELD + PAYING + SOLD units of that user in the lot.
- reserve is all-or-nothing: fewer than qty available -> SOLD_OUT (levels tell what is left).
- extend: once per reservation, adds min(hold_s, max_extend_s) seconds; only while HELD.
- begin_payment: HELD -> PAYING, expires_at = max(h, min(now + payment_grace_s, h +
  payment_grace_s)) where h is the hold's own expiry (created + hold_s, + the extension): a charge
  in flight keeps its units, yet no hold lives past h + one grace whatever payments do. A PAYING
  reservation still expires at that deadline, so checkout must confirm or abort within the grace.
  abort_payment: PAYING -> HELD back at h (or EXPIRED at once when h has passed). A hold takes at
  most ``max_payment_attempts`` (3) begin_payments; the next is refused TOO_MANY_ATTEMPTS and the
  hold is left to expire at h (its owner may still release it).
- cancel(): every HELD/PAYING reservation becomes CANCELLED (units back to available, event
  ``hold_cancelled``), the waitlist is emptied (``waitlist_cancelled`` per user), and
  begin_payment / confirm answer SALE_CANCELLED from then on (a charge in flight must be refunded).
- Retries are safe: begin_payment on PAYING, confirm on SOLD with the same order id, release on
  RELEASED and abort_payment on HELD answer ok without changing anything.
- Waitlist: only when available == 0 (else NOT_SOLD_OUT); one entry per user; qty is a maximum.
  Units freed by release, expiry or a restock go to the head of the waitlist first, as a fresh
  hold of min(wanted, available, user's remaining limit) units; the stream event
  ``waitlist_granted`` names the user and the reservation (the hub tells that user privately).
- Lost connection: a batch is sent again (twice at most, 50 ms and 250 ms later; every script is
  idempotent in effect), then the call raises redis' ConnectionError / TimeoutError. reserve can
  always be retried by the caller with the same request_id.
- Owner checks: extend, release and begin_payment refuse another user (NOT_OWNER, nothing
  leaked). confirm / abort_payment (checkout, trusted) and get_reservation / holds_of (reads) do
  not check: a transport must compare ``reservation.user`` with its caller before showing one.
- Concurrent calls made in the same event-loop tick are sent to Redis together (auto-pipelining),
  as pipelines of at most 64 calls written in that same tick: just ``asyncio.gather`` many
  reserves, there is nothing to configure.
"""
from inventory.checks import MAX_ID_LEN, MAX_QTY
from inventory.compaction import CompactResult
from inventory.core import Inventory
from inventory.keys import CHANGED_CHANNEL, changed_channel, keys_for
from inventory.types import (
    MESSAGES,
    AuditReport,
    InventoryError,
    Lot,
    LotSpec,
    LotState,
    OpResult,
    Refusal,
    Reservation,
    ReservationState,
    ReserveResult,
    StockEvent,
    StockLevels,
    WaitlistResult,
)

__all__ = [
    "AuditReport",
    "CHANGED_CHANNEL",
    "changed_channel",
    "CompactResult",
    "Inventory",
    "InventoryError",
    "Lot",
    "LotSpec",
    "LotState",
    "MAX_ID_LEN",
    "MESSAGES",
    "MAX_QTY",
    "OpResult",
    "Refusal",
    "Reservation",
    "ReservationState",
    "ReserveResult",
    "StockEvent",
    "StockLevels",
    "WaitlistResult",
    "keys_for",
]
