"""Cleaning, blocked words, links and the comment-to-buy parser (pure functions)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.commentbuy import BuyIntent, parse_buy
from chat.errors import EMPTY, TOO_LONG, VALIDATION, ChatRefused
from chat.links import LinkPolicy
from chat.text import clean
from chat.words import WordFilter, default_words


def code_of(fn, *args) -> str:
    with pytest.raises(ChatRefused) as exc:
        fn(*args)
    return exc.value.code


def test_clean_nfc_and_controls() -> None:
    decomposed = "caf\u0065\u0301 \u1100\u1161"  # e + combining acute; jamo ㄱ + ㅏ
    assert clean(decomposed) == "caf\u00e9 \uac00"
    assert clean("a\x00b\x07c\x1b[31m") == "abc[31m"
    assert clean("line1\nline2\tend") == "line1 line2 end"
    assert clean("evil\u202egnp.exe") == "evilgnp.exe"  # bidi override dropped
    assert clean("  lots    of   space  ") == "lots of space"
    assert clean("e\x00\u0301") == "\u00e9"  # composed after the control is gone


def test_clean_refuses_empty_long_and_non_text() -> None:
    assert code_of(clean, "") == EMPTY
    assert code_of(clean, " \x00\n\u200e ") == EMPTY
    assert clean("x" * 300) == "x" * 300
    assert code_of(clean, "x" * 301) == TOO_LONG
    assert code_of(clean, "x" * 11, 10) == TOO_LONG
    assert code_of(clean, 42) == VALIDATION


def test_clean_cuts_zalgo_marks() -> None:
    assert clean("x" + "\u0301" * 40) == "x" + "\u0301" * 3


def test_html_is_kept_verbatim_not_escaped() -> None:
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)> &amp;'
    assert clean(payload) == payload


@pytest.fixture(scope="module")
def words() -> WordFilter:
    return WordFilter(default_words() + ("ass",), allowed=["scunthorpe"])


@pytest.mark.parametrize("text", [
    "FUCK", "fuck you", "f u c k", "f.u.c.k", "f-u-c-k", "fuuuuuck", "ｆｕｃｋ", "Ｆ Ｕ Ｃ Ｋ", "f1u2c3k",
    "motherfuckers", "ASS", "aaasss", "what an ass!",
    "시발", "시 발", "씨1발", "시발놈아", "ㅅㅂ", "병 신", "병신ㅋㅋㅋ", "개 새 끼",
])
def test_blocked_words_catch_simple_evasion(words: WordFilter, text: str) -> None:
    assert words.find(text) is not None


@pytest.mark.parametrize("text", [
    "hello", "as you like", "class glass pass", "this hit me hard", "Scunthorpe United",
    "안녕하세요", "좋아요 구매 2개", "I'll assess it", "shift it",
])
def test_blocked_words_spare_innocent_text(words: WordFilter, text: str) -> None:
    assert words.find(text) is None


def test_link_policy_modes() -> None:
    block = LinkPolicy("block")
    allow = LinkPolicy("allow", ["shop.example"])
    open_ = LinkPolicy("open")
    for text in ["see https://evil.test/x", "www.evil.test", "go bit.ly/abc", "ｅｖｉｌ．ｃｏｍ", "evil。com",
                 "evil . com", "evil dot com", '<a href="http://evil.test">x</a>']:
        assert block.offending(text) is not None, text
        assert allow.offending(text) is not None, text
        assert open_.offending(text) is None
    assert allow.offending("https://shop.example/item/1 and cdn.shop.example") is None
    assert allow.offending("https://shop.example.evil.com") == "shop.example.evil.com"
    for text in ["hi.there", "price 3.5 dollars", "I like it . so good", "wait...what", "javascript:alert(1)"]:
        assert block.offending(text) is None, text


@pytest.mark.parametrize("text,qty", [
    ("buy", 1), ("BUY 2", 2), ("buy2", 2), ("buy x2", 2), ("sold", 1), ("sold x2", 2), ("Sold 3!", 3),
    ("구매", 1), ("구매 2개", 2), ("구매2개", 2), ("2개 구매", 2), ("구매요", 1), ("ｂｕｙ ２", 2),
])
def test_comment_to_buy_parses_orders(text: str, qty: int) -> None:
    assert parse_buy(text) == BuyIntent(qty)


@pytest.mark.parametrize("text", ["buy 0", "buy 50", "I would buy this", "buy it", "buy 2 please", "sold out?", "hello"])
def test_comment_to_buy_ignores_chat(text: str) -> None:
    assert parse_buy(text) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_clean_output_has_no_controls_and_is_stable(raw: str) -> None:
    try:
        out = clean(raw)
    except ChatRefused as exc:
        assert exc.code in (EMPTY, TOO_LONG)
        return
    assert out and len(out) <= 300 and out == out.strip()
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E for c in out)
    assert clean(out) == out


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_filters_never_crash(raw: str) -> None:
    WordFilter(default_words()).find(raw)
    LinkPolicy("block").offending(raw)
    parse_buy(raw)
