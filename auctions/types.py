"""Typed values of the auctions API: the spec, the auction as stored, bid answers, offers, audits.

Plain dataclasses, so the hub can turn them into JSON without knowing anything about Redis."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain import Code, DomainError

# Whatnot-like steps in minor units: 1.00 up to 30.00, then 2, 3, 5, 10, 20, 50 as prices grow.
DEFAULT_INCREMENTS: tuple[tuple[int, int], ...] = (
    (0, 100), (3_000, 200), (10_000, 300), (20_000, 500), (50_000, 1_000), (100_000, 2_000), (250_000, 5_000))


def increment_at(table: tuple[tuple[int, int], ...] | list[list[int]], price: int) -> int:
    """The step that applies at `price`: the row with the greatest `from` <= price."""
    inc = table[0][1]
    for start, step in table:
        if price >= start:
            inc = step
        else:
            break
    return int(inc)


class AuctionError(DomainError):
    """An admin call refused (AUCTION_NOT_FOUND, AUCTION_STARTED, INVALID_REQUEST, ...)."""

    @classmethod
    def of(cls, code: str, **details: Any) -> AuctionError:
        """The refusal a script answered, by its result code (UNKNOWN_AUCTION is AUCTION_NOT_FOUND)."""
        return cls(Code.AUCTION_NOT_FOUND if code == "UNKNOWN_AUCTION" else Code(code), MESSAGES.get(code, code),
                   **details)


MESSAGES = {
    "UNKNOWN_AUCTION": "no such auction",
    "RATE_LIMITED": "too many bids; wait a moment",
    "AUCTION_CLOSED": "the auction is over",
    "NOT_STARTED": "the auction has not started; set a max bid to pre-bid",
    "BID_TOO_LOW": "the bid is below the minimum",
    "MAX_TOO_LOW": "a max bid must be above your current max",
    "OWN_HIGH_BID": "you already have the high bid",
    "AUCTION_STARTED": "a started auction cannot be cancelled or started again",
    "INVALID_REQUEST": "invalid request",
    "NOT_YET": "the auction has not reached its end",
    "BAD_STATE": "not possible in the auction's state",
}


@dataclass(frozen=True)
class AuctionSpec:
    """What the host chooses. Money in minor units; `reserve` None = no reserve price; bids in the
    last `counter_ms` move the end to now + counter_ms unless `sudden_death`."""

    auction_id: str
    owner: str  # an opaque group (the hub: the broadcast id); auctions are listed per owner
    sku: str
    currency: str
    start_price: int
    duration_ms: int
    counter_ms: int = 10_000
    sudden_death: bool = False
    increments: tuple[tuple[int, int], ...] = DEFAULT_INCREMENTS
    reserve: int | None = None
    title: str = ""


@dataclass
class Auction:
    id: str
    owner: str
    sku: str
    title: str
    currency: str
    start_price: int
    duration_ms: int
    counter_ms: int
    sudden_death: bool
    increments: list[list[int]]
    reserve: int | None
    state: str  # scheduled | live | closed | cancelled (live past ends_at bids nothing: AUCTION_CLOSED)
    created_at: int
    started_at: int | None
    ends_at: int | None
    high: int  # the current price (0 before the first bid)
    leader: str  # user id ('' = none); never shown to others
    leader_label: str  # the masked name others see
    leader_max: int  # the leader's max bid; never shown to others
    bids: int
    v: int
    result: str | None = None  # sold | no_bids | reserve_not_met | cancelled
    winner: str | None = None
    price: int | None = None
    closed_at: int | None = None
    offer_n: int = 0  # 1 = the winner's hold, 2 = the runner-up's second chance
    offer_user: str | None = None
    offer_price: int | None = None
    offer_lot: str | None = None
    offer_reservation: str | None = None
    my_prebid: int | None = None  # the asking user's pre-bid (get(..., user=))
    server_now: int = 0

    def min_next(self) -> int:
        """The lowest bid accepted now."""
        return self.high + increment_at(self.increments, self.high) if self.leader else self.start_price

    def public(self) -> dict[str, Any]:
        """What everyone may see: no user ids, no max bid."""
        return {"auction_id": self.id, "sku": self.sku, "title": self.title, "currency": self.currency,
                "start_price": self.start_price, "duration_ms": self.duration_ms, "counter_ms": self.counter_ms,
                "sudden_death": self.sudden_death, "increments": self.increments, "reserve_set": self.reserve is not None,
                "reserve_met": (self.reserve is None or self.leader_max >= self.reserve) if self.leader else False,
                "state": self.state, "created_at": self.created_at, "started_at": self.started_at,
                "ends_at": self.ends_at, "high": self.high, "leader": self.leader_label, "bids": self.bids,
                "min_next": self.min_next(), "v": self.v, "result": self.result, "price": self.price,
                "winner": self.leader_label if self.result == "sold" else None, "closed_at": self.closed_at}


@dataclass
class BidResult:
    """The answer to a bid or max bid. `replay` = the first answer to this request_id again."""

    ok: bool
    code: str | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # min (BID_TOO_LOW), retry_after (RATE_LIMITED), ...
    replay: bool = False
    kind: str = ""
    state: str = ""
    amount: int = 0
    high: int = 0
    leading: bool = False
    max: int | None = None  # the bidder's own max while leading
    leader_label: str = ""
    bids: int = 0
    ends_at: int = 0
    v: int = 0
    extended: bool = False
    min_next: int = 0
    at: int = 0
    outbid: str = ""  # the user who lost the lead (for a private notice); '' = nobody


@dataclass
class CloseResult:
    code: str  # OK (closed now) | ALREADY (closed before) | NOT_YET | NOT_STARTED | UNKNOWN_AUCTION
    result: str | None = None
    winner: str = ""
    winner_label: str = ""
    price: int = 0
    bids: int = 0
    ends_at: int = 0
    closed_at: int = 0
    v: int = 0


@dataclass(frozen=True)
class Offer:
    """A hold for the winner (n=1) or, after an unpaid win, the runner-up (n=2), at `price`: an
    inventory lot of one unit; pay it through checkout with (lot_id, reservation_id)."""

    auction_id: str
    n: int
    user: str
    price: int
    lot_id: str
    reservation_id: str
    expires_at: int


@dataclass
class AuditReport:
    ok: bool
    problems: list[str]
    bids: int  # accepted bids and max bids in the log (pre-bids included)
    winner: str  # '' when nobody won
    price: int
    result: str | None
    late_bids: int  # log entries at or after the end in force when they were made
    runner_up: str = ""
    runner_up_amount: int = 0
