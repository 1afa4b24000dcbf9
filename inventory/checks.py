"""Input checks of the Inventory facade: bad input never reaches Redis. Reservation calls answer
it with a typed refusal, lot admin calls raise InventoryError(INVALID_REQUEST)."""
from __future__ import annotations

import re

from domain.validate import ID_RE
from inventory.types import MESSAGES, InventoryError, LotSpec, Refusal, ReserveResult

MAX_ID_LEN = 64
MAX_QTY = 1_000_000
MAX_TOTAL = 1_000_000_000
MAX_PRICE = 10**12
_LOT_ID = ID_RE  # the product's one id rule (domain/validate.py)
_CURRENCY = re.compile(r"[A-Z]{3}")
STREAM_ID = re.compile(r"\$|\d{1,20}(-\d{1,20})?")


def valid_id(x: object) -> bool:
    """A user, request, reservation or order id: 1-64 printable characters."""
    return type(x) is str and 0 < len(x) <= MAX_ID_LEN and x.isprintable()


def valid_lot_id(x: object) -> bool:
    """A lot id: it goes into key names, so only A-Z a-z 0-9 _ . : - (1-64)."""
    return type(x) is str and _LOT_ID.fullmatch(x) is not None


def valid_qty(x: object) -> bool:
    return type(x) is int and 1 <= x <= MAX_QTY


def int_in(x: object, lo: int, hi: int) -> bool:
    """An int (not a bool, not a float) within lo..hi."""
    return type(x) is int and lo <= x <= hi


def refused(code: Refusal, message: str = "") -> ReserveResult:
    return ReserveResult(ok=False, code=code, message=message or MESSAGES[code])


def check_spec(spec: LotSpec) -> None:
    """Raise InventoryError(INVALID_REQUEST) naming every field of `spec` that is out of bounds."""
    problems = []
    if not isinstance(spec, LotSpec):
        raise InventoryError(Refusal.INVALID_REQUEST, "spec must be a LotSpec")
    if not valid_lot_id(spec.lot_id):
        problems.append("lot_id: 1-64 of A-Z a-z 0-9 _ . : -")
    if not valid_id(spec.sku):
        problems.append("sku: 1-64 printable characters")
    if not int_in(spec.total, 0, MAX_TOTAL):
        problems.append(f"total: int 0..{MAX_TOTAL}")
    if not int_in(spec.unit_price, 0, MAX_PRICE):
        problems.append("unit_price: int minor units >= 0")
    if type(spec.currency) is not str or not _CURRENCY.fullmatch(spec.currency):
        problems.append("currency: ISO 4217 code like EUR")
    if not int_in(spec.per_user_limit, 1, MAX_QTY):
        problems.append(f"per_user_limit: int 1..{MAX_QTY}")
    if not int_in(spec.hold_s, 1, 86_400):
        problems.append("hold_s: int 1..86400")
    for name in ("opens_at_ms", "closes_at_ms"):
        v = getattr(spec, name)
        if v is not None and not int_in(v, 0, 10**14):
            problems.append(f"{name}: epoch ms or None")
    if (type(spec.opens_at_ms) is int and type(spec.closes_at_ms) is int
            and spec.closes_at_ms <= spec.opens_at_ms):
        problems.append("closes_at_ms must be after opens_at_ms")
    if problems:
        raise InventoryError(Refusal.INVALID_REQUEST, "; ".join(problems))
