"""Comment-to-buy: a chat message that *is* a buy order ("buy", "buy 2", "구매 2개", "sold x2").

The whole message must be the order (after NFKC and case folding), so "I would never buy this"
is chat, not an order. Quantity defaults to 1; 0 or more than `max_qty` is not an order."""
from __future__ import annotations

import re
from dataclasses import dataclass

from chat.fold import nfkc_lower

_KEYWORD = r"(?:buy|sold|구매(?:요|할게요|합니다|할께요|해요)?)"
_QTY = r"(?:[x×*]\s*)?(\d{1,4})\s*(?:개|pcs?|ea|units?)?"
_ORDER = re.compile(
    rf"^\s*(?:{_KEYWORD}\s*(?:{_QTY})?|(?:{_QTY})\s*{_KEYWORD})\s*[!.~]*\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BuyIntent:
    """A parsed order: how many units the sender wants."""

    qty: int


def parse_buy(text: str, max_qty: int = 10) -> BuyIntent | None:
    """The order a message places, or None when it is ordinary chat."""
    if len(text) > 40:
        return None
    m = _ORDER.match(nfkc_lower(text))
    if m is None:
        return None
    raw = m.group(1) or m.group(2)
    qty = int(raw) if raw else 1
    if qty < 1 or qty > max_qty:
        return None
    return BuyIntent(qty=qty)
