"""One list of codes, one table, two translations (domain/errors.py).

Every Code has a row; docs/protocol.md shows exactly that table (every documented code is a Code
and every Code is documented); every code has a sentence in the pages' i18n.js; the REST middleware
and the hub's error ack both answer from the table, for every code."""
from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from chat.errors import SEND_CODES
from domain import TABLE, Code, DomainError
from domain.errors import codes_markdown
from inventory import Refusal
from live.errors import error_middleware
from live.hub.registry import Caller, Registry
from tests.redis_proc import free_port

REPO = Path(__file__).resolve().parents[2]
PROTOCOL = (REPO / "docs" / "protocol.md").read_text("utf-8")


def _doc_table() -> str:
    m = re.search(r"<!-- errors:begin[^\n]*-->\n(.*?)<!-- errors:end -->", PROTOCOL, re.S)
    assert m, "docs/protocol.md has no generated errors table"
    return m.group(1)


def test_every_code_has_one_row_of_the_table():
    assert set(TABLE) == set(Code)
    assert all(100 <= rule.status <= 599 for rule in TABLE.values())
    # only the store's two answers are "send the same request again", and they say when
    assert {c for c, rule in TABLE.items() if rule.retryable} == {Code.BUSY, Code.UNAVAILABLE}
    assert TABLE[Code.BUSY].retry_after_ms == 250 and TABLE[Code.UNAVAILABLE].retry_after_ms == 1000


def test_the_documented_table_is_the_table():
    assert _doc_table() == codes_markdown(), "regenerate it: python -c 'from domain.errors import codes_markdown as c; print(c())'"
    documented = set(re.findall(r"^\| `([A-Z_0-9]+)` \| (\d{3}) \|", _doc_table(), re.M))
    assert {code for code, _ in documented} == {c.value for c in Code}
    assert all(TABLE[Code(code)].status == int(status) for code, status in documented)


# Upper-case words in backticks that protocol.md uses for other things than error codes: HTTP
# methods, states, formats; and the one code a page shows by itself (never sent by the server).
NOT_CODES = {"HAWKER", "JSON", "HTTP", "GET", "POST", "PATCH", "DELETE", "OPTIONS", "HELD", "PAYING", "SOLD",
             "RELEASED", "PAID", "REFUNDED", "VOD", "KRW", "EVENT", "ENDLIST", "TIME", "HMAC", "EMBED_NOT_ALLOWED"}


def test_every_code_named_anywhere_in_the_protocol_is_a_code():
    """Not only the table: a code named in any section (an endpoint's row, an event's errors) exists."""
    named = set(re.findall(r"`([A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+|[A-Z]{4,})`", PROTOCOL))
    named = {c for c in named - NOT_CODES if not c.startswith(("HAWKER_", "EXT_"))}
    assert sorted(named - {c.value for c in Code}) == []


def test_every_code_the_parts_answer_is_a_code():
    assert {r.value for r in Refusal} <= {c.value for c in Code}
    assert set(SEND_CODES) <= set(Code)
    with pytest.raises(ValueError):
        DomainError("NOT_A_REAL_CODE")  # type: ignore[arg-type]  # the point: a bare string is refused


def test_every_code_has_a_sentence_for_the_pages():
    js = (REPO / "live" / "static" / "hawker" / "i18n.js").read_text("utf-8")
    block = js[js.index("const ERRORS = {"):]
    block = block[:block.index("\n};")]
    sentences = set(re.findall(r"^\s+([A-Z][A-Z0-9_]*): \[", block, re.M))
    assert sorted(c.value for c in Code if c.value not in sentences) == []


async def test_rest_answers_every_code_with_its_status():
    async def refuse(request: web.Request) -> web.Response:
        raise DomainError(Code(request.match_info["code"]), "refused", field="x")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/{code}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            for code in Code:
                async with http.get(f"http://127.0.0.1:{port}/{code.value}") as resp:
                    body = await resp.json()
                    assert resp.status == TABLE[code].status, code
                    assert body["error"]["code"] == code.value and body["error"]["field"] == "x"
                    if TABLE[code].retryable:
                        assert body["error"]["retry_after"] == TABLE[code].retry_after_ms
                        assert resp.headers["Retry-After"] == "1"
                    else:
                        assert "retry_after" not in body["error"] and "Retry-After" not in resp.headers
    finally:
        await runner.cleanup()


async def test_an_ack_answers_every_code_from_the_same_table():
    reg = Registry()
    caller = Caller(sid="s1", user="u1", name="U", role="viewer", broadcast="b1")

    @reg.command("refuse")
    async def refuse(_: Caller, payload: dict) -> dict:
        raise DomainError(Code(payload["code"]), "refused", field="x")

    for code in Code:
        reg._buckets.clear()  # the flood allowance is not what this test is about
        ack = await reg.dispatch(caller, "refuse", ({"code": code.value},))
        assert ack["ok"] is False and ack["error"]["code"] == code.value and ack["error"]["field"] == "x"
        assert ack["error"].get("retry_after") == TABLE[code].retry_after_ms
