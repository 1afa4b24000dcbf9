"""Connection auth: who may join which broadcast, and the reasons given to those refused."""
from __future__ import annotations

import time

import jwt
import pytest
import socketio

from tests.conftest import TEST_SECRET


async def refusal(url: str, auth=None, query: str = "") -> dict:
    c = socketio.AsyncClient(reconnection=False)
    seen: dict = {}

    @c.on("connect_error")
    async def _err(data):
        seen.update(data)

    with pytest.raises(socketio.exceptions.ConnectionError):
        await c.connect(url + query, auth=auth, transports=["websocket"], wait_timeout=15)
    assert not c.connected
    return seen["data"]


async def test_good_token_joins_its_broadcast(server, bc, clients, token):
    c = await clients(server.url, token("viewer", "b1", "u1", name="Ann"))
    snap = await c.snapshot()
    assert snap["broadcast_id"] == "b1"
    assert snap["you"] == {"user": "u1", "name": "Ann", "role": "viewer"}


async def test_token_in_query_string_is_accepted(server, bc, clients, token):
    c = await clients(server.url + "?token=" + token("viewer", "b1", "u9"), None)
    assert (await c.snapshot())["you"]["user"] == "u9"


@pytest.mark.parametrize("case", ["missing", "garbage", "bad_signature", "expired", "no_role"])
async def test_bad_tokens_are_refused_with_a_code(server, bc, case):
    now = int(time.time())
    tokens = {
        "missing": None,
        "garbage": "not-a-jwt",
        "bad_signature": jwt.encode({"sub": "u", "role": "viewer", "bc": "b1", "exp": now + 60},
                                    "other-secret-0123456789abcdef0123", algorithm="HS256"),
        "expired": jwt.encode({"sub": "u", "role": "viewer", "bc": "b1", "exp": now - 10}, TEST_SECRET, algorithm="HS256"),
        "no_role": jwt.encode({"sub": "u", "bc": "b1", "exp": now + 60}, TEST_SECRET, algorithm="HS256"),
    }
    expected = {"missing": "TOKEN_MISSING", "garbage": "TOKEN_INVALID", "bad_signature": "TOKEN_INVALID",
                "expired": "TOKEN_EXPIRED", "no_role": "TOKEN_INVALID"}
    auth = {"token": tokens[case]} if tokens[case] else {}
    err = await refusal(server.url, auth)
    assert err["code"] == expected[case]
    assert err["message"]


async def test_token_for_a_cannot_join_b(server, bc, token):
    err = await refusal(server.url, {"token": token("host", "b1", "h1"), "broadcast": "b2"})
    assert err["code"] == "FORBIDDEN"


async def test_unknown_broadcast_is_refused(server, bc, token):
    err = await refusal(server.url, {"token": token("viewer", "nope", "u1")})
    assert err["code"] == "BROADCAST_NOT_FOUND"


async def test_star_token_must_name_a_broadcast(server, bc, clients, token):
    err = await refusal(server.url, {"token": token("host", "*", "op")})
    assert err["code"] == "BROADCAST_REQUIRED"
    c = await clients(server.url, token("host", "*", "op"), broadcast="b2")
    assert (await c.snapshot())["broadcast_id"] == "b2"


async def test_auth_must_be_an_object(server, bc, token):
    # python-socketio sends any JSON value as auth; a string is not {"token": ...}
    err = await refusal(server.url, token("viewer", "b1", "u1"))
    assert err["code"] == "BAD_AUTH"
