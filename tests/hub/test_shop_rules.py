"""Pure rules of the shop domain that the socket handlers share (shop/): which sale comment-to-buy
orders go to, and how a person's name is shown to others (auctions, quizzes, giveaways)."""
from __future__ import annotations

from shop.names import mask
from shop.sales import Sale, selling_now


def sale(sid: str, opens_at: int, *, closes_at: int | None = None, state: str = "open") -> Sale:
    return Sale(id=sid, broadcast="b1", product_id="p1", title="T", image_url="", price=100, currency="EUR",
                units=5, limit=1, hold_s=120, opens_at=opens_at, closes_at=closes_at, state=state, created_at=0)


def test_selling_now_is_the_latest_open_sale_that_has_not_ended() -> None:
    sales = [sale("early", 1_000), sale("late", 2_000), sale("future", 9_000), sale("closed", 2_500, state="closed"),
             sale("ended", 2_600, closes_at=4_000)]
    assert selling_now(sales, 5_000).id == "late"   # "ended" closed at 4 000, "closed" is closed
    assert selling_now(sales, 3_000).id == "ended"  # still selling until 4 000, and opened last
    assert selling_now(sales, 1_500).id == "early"
    assert selling_now(sales, 500) is None and selling_now([], 5_000) is None


def test_mask_shows_the_first_and_the_last_letter_only() -> None:
    assert mask("Jiwoo Kim") == "J***m" and mask("  Ann ") == "A***n"
    assert mask("Al") == "A***" and mask("") == "?***"
