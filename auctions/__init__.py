"""Live auctions: bids, max (proxy) bids and pre-bids on one Redis slot per auction.

Every change is one Lua script (auctions/*.lua) on Redis's clock, sent through the shared
auto-pipeline; the accepted bids go to an append-only log that `audit()` replays. A win becomes an
inventory hold at the winning price, paid through checkout like any sale. Imports nothing of live/."""
from auctions.audit import replay
from auctions.core import Auctions, keys_for
from auctions.types import (
    DEFAULT_INCREMENTS,
    Auction,
    AuctionError,
    AuctionSpec,
    AuditReport,
    BidResult,
    CloseResult,
    Offer,
    increment_at,
)

__all__ = ["DEFAULT_INCREMENTS", "Auction", "AuctionError", "AuctionSpec", "Auctions", "AuditReport", "BidResult",
           "CloseResult", "Offer", "increment_at", "keys_for", "replay"]
