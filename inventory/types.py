"""Typed values of the inventory API: lots, reservations, refusals, levels, events.

Everything here is a plain dataclass or str Enum so results can be logged, compared in tests and
turned into JSON by the hub without knowing anything about Redis."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from domain import Code, DomainError


class LotState(str, Enum):
    """Effective state of a lot, computed with Redis time: a SCHEDULED lot is OPEN from opens_at_ms
    on, and any lot is CLOSED from closes_at_ms on, without anyone calling open()/close()."""

    SCHEDULED = "SCHEDULED"
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    CANCELLED = "CANCELLED"


class ReservationState(str, Enum):
    HELD = "HELD"  # units set aside for the user until expires_at_ms
    PAYING = "PAYING"  # a charge is in flight; expiry pushed out by the payment grace
    SOLD = "SOLD"  # confirmed with an order id; final
    RELEASED = "RELEASED"  # given back by the user; final
    EXPIRED = "EXPIRED"  # hold (or payment grace) ran out on Redis's clock; final
    CANCELLED = "CANCELLED"  # the lot was cancelled while this was HELD/PAYING; final


class Refusal(str, Enum):
    """Machine-readable reason an operation did nothing (besides expiring what was due)."""

    NOT_OPEN = "NOT_OPEN"  # sale has not started (now < opens_at and not opened by hand)
    CLOSED = "CLOSED"  # sale closed or cancelled
    SOLD_OUT = "SOLD_OUT"  # fewer units available than asked for
    LIMIT_REACHED = "LIMIT_REACHED"  # user would go above the lot's per-user limit
    INVALID_QTY = "INVALID_QTY"  # qty not an int in 1..MAX_QTY (bools refused too)
    UNKNOWN_LOT = "UNKNOWN_LOT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"
    NOT_OWNER = "NOT_OWNER"  # reservation belongs to another user
    NOT_HELD = "NOT_HELD"  # op needs a HELD reservation (e.g. release/extend/begin_payment)
    NOT_PAYING = "NOT_PAYING"  # confirm needs PAYING (or SOLD with the same order id)
    EXPIRED = "EXPIRED"  # the reservation expired (maybe just now, on Redis's clock)
    ALREADY_EXTENDED = "ALREADY_EXTENDED"  # extend works once per reservation
    NOT_SOLD_OUT = "NOT_SOLD_OUT"  # join_waitlist only while available == 0: reserve instead
    LOT_EXISTS = "LOT_EXISTS"  # create_lot with an id already used
    BELOW_COMMITTED = "BELOW_COMMITTED"  # adjust_total below held + sold
    INVALID_REQUEST = "INVALID_REQUEST"  # wrong types, empty or oversized (> 64 chars) ids, bad spec
    SALE_CANCELLED = "SALE_CANCELLED"  # begin_payment / confirm on a cancelled lot
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"  # begin_payment past max_payment_attempts for this hold


MESSAGES: dict[Refusal, str] = {
    Refusal.NOT_OPEN: "the sale has not started yet",
    Refusal.CLOSED: "the sale is closed",
    Refusal.SOLD_OUT: "not enough units left",
    Refusal.LIMIT_REACHED: "that would go above the per-user limit",
    Refusal.INVALID_QTY: "qty must be a whole number from 1",
    Refusal.UNKNOWN_LOT: "no such lot",
    Refusal.UNKNOWN_RESERVATION: "no such reservation",
    Refusal.NOT_OWNER: "this reservation belongs to someone else",
    Refusal.NOT_HELD: "the reservation is not held (paying, sold or released)",
    Refusal.NOT_PAYING: "the reservation has no payment in progress",
    Refusal.EXPIRED: "the reservation has expired",
    Refusal.ALREADY_EXTENDED: "a reservation can be extended once",
    Refusal.NOT_SOLD_OUT: "units are available: reserve instead of waiting",
    Refusal.LOT_EXISTS: "a lot with this id exists",
    Refusal.BELOW_COMMITTED: "total cannot go below held + sold units",
    Refusal.INVALID_REQUEST: "invalid request",
    Refusal.SALE_CANCELLED: "the sale was cancelled",
    Refusal.TOO_MANY_ATTEMPTS: "too many payment attempts for this hold",
}


class InventoryError(DomainError):
    """Raised by the lot admin calls (create_lot, adjust_total, open, close, cancel) only.
    Reservation calls never raise for bad input: they return a result with `code`. `refusal` is
    the inventory's own reason, `code` the same as a product-wide `Code`."""

    def __init__(self, refusal: Refusal, message: str = "") -> None:
        super().__init__(Code(refusal.value), message or refusal.value)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class StockLevels:
    """Counters of one lot right after an operation. Invariant: available + held + sold == total.
    `held` counts HELD and PAYING units; `waitlist` is the number of users waiting."""

    total: int
    available: int
    held: int
    sold: int
    waitlist: int


@dataclass(frozen=True, slots=True)
class LotSpec:
    """What a host asks for. Money is integer minor units + ISO 4217 currency; times are epoch ms
    on the server (Redis) clock. opens_at_ms=None: opens only when open() is called."""

    lot_id: str
    sku: str
    total: int
    unit_price: int
    currency: str
    per_user_limit: int = 1
    hold_s: int = 120
    opens_at_ms: int | None = None
    closes_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Lot:
    """A lot as stored, with its effective state (see LotState) and current levels."""

    lot_id: str
    sku: str
    total: int
    unit_price: int
    currency: str
    per_user_limit: int
    hold_s: int
    opens_at_ms: int | None
    closes_at_ms: int | None
    state: LotState
    created_at_ms: int
    levels: StockLevels


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str  # unique within its lot ("r1", "r2", ...)
    lot_id: str
    user: str
    qty: int
    state: ReservationState
    expires_at_ms: int  # server clock; meaningful while HELD or PAYING
    order_id: str | None = None  # set when SOLD
    created_at_ms: int = 0
    extended: bool = False
    from_waitlist: bool = False  # granted to a waiting user when units were freed
    payment_attempts: int = 0  # begin_payment calls that moved it HELD -> PAYING


@dataclass(frozen=True, slots=True)
class ReserveResult:
    """Answer of every reservation operation. ok=True: `reservation` is set and `code` is None.
    ok=False: `code` says why; `reservation` is set when the refusal is about an existing one
    (NOT_HELD, EXPIRED, ...). `levels` is None only when the lot is unknown or input was invalid."""

    ok: bool
    reservation: Reservation | None = None
    code: Refusal | None = None
    levels: StockLevels | None = None
    message: str = ""


OpResult = ReserveResult  # the same shape answers extend/release/begin_payment/confirm/abort


@dataclass(frozen=True, slots=True)
class WaitlistResult:
    """position is 1-based in the queue (1 = next to be served)."""

    ok: bool
    position: int | None = None
    code: Refusal | None = None
    levels: StockLevels | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class StockEvent:
    """One entry of the per-lot capped stream. `type` is one of: lot_created, lot_opened,
    lot_closed, lot_cancelled, total_adjusted, reserved, extended, released, expired,
    payment_begun, payment_aborted, sold, waitlist_joined, waitlist_granted, waitlist_dropped,
    hold_cancelled (a live hold freed by cancel: reservation, user, qty), waitlist_cancelled (user),
    user_forgotten (user = the pseudonym, reservations = how many were renamed).
    `data` holds the other fields as strings (reservation, user, qty, order_id, reason ...):
    for waitlist_granted, data["user"] is who got the hold and data["reservation"] its id."""

    id: str  # stream id, pass as after_id to read on
    lot_id: str
    type: str
    at_ms: int
    levels: StockLevels
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditReport:
    """audit() recomputes held/sold/per-user counts from the reservations themselves (atomically)
    and compares: ok is True when there is nothing in `problems`."""

    ok: bool
    problems: list[str]
    levels: StockLevels  # the stored counters
    recomputed: StockLevels  # from the reservations (available = total - held - sold)
    reservations: int  # how many reservations the lot has on record
    max_user_units: int  # largest HELD+PAYING+SOLD units of any single user
    oversold: int  # units sold or held beyond total (0 when healthy)
    compacted_at_ms: int | None = None  # set once compacted: `reservations` then counts SOLD ones only
