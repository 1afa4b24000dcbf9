"""JWT HS256 tokens: valid, expired, wrong signature, wrong role - over HTTP and on the socket."""
import time

import aiohttp
import jwt
import pytest

from live.auth import AuthError, mint, verify
from tests.conftest import TEST_SECRET


def test_valid_token_round_trips():
    claims = verify(TEST_SECRET, mint(TEST_SECRET, sub="ann", role="moderator", broadcast="b1", name="Ann", ttl=60))
    assert (claims.sub, claims.role, claims.broadcast, claims.name) == ("ann", "moderator", "b1", "Ann")
    assert claims.exp > time.time()
    assert claims.allows("b1") and not claims.allows("b2") and claims.is_staff


def test_admin_token_allows_every_broadcast():
    claims = verify(TEST_SECRET, mint(TEST_SECRET, sub="shop", role="host", broadcast="*"))
    assert claims.allows("anything")


def test_expired_token():
    token = mint(TEST_SECRET, sub="u", role="viewer", broadcast="b1", ttl=-10)
    with pytest.raises(AuthError) as exc:
        verify(TEST_SECRET, token)
    assert exc.value.code == "TOKEN_EXPIRED"


def test_wrong_signature():
    token = mint("another-secret-of-at-least-32-bytes!!", sub="u", role="host", broadcast="b1")
    with pytest.raises(AuthError) as exc:
        verify(TEST_SECRET, token)
    assert exc.value.code == "TOKEN_INVALID"


@pytest.mark.parametrize("payload", [
    {"sub": "u", "role": "admin", "bc": "b1"},
    {"sub": "u", "bc": "b1"},
    {"sub": "u", "role": "host"},
    {"role": "host", "bc": "b1"},
])
def test_wrong_or_missing_claims(payload):
    token = jwt.encode({**payload, "exp": int(time.time()) + 60}, TEST_SECRET, algorithm="HS256")
    with pytest.raises(AuthError) as exc:
        verify(TEST_SECRET, token)
    assert exc.value.code == "TOKEN_INVALID"


def test_alg_none_is_refused():
    token = jwt.encode({"sub": "u", "role": "host", "bc": "b1", "exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(AuthError):
        verify(TEST_SECRET, token)


def test_mint_refuses_unknown_role():
    with pytest.raises(ValueError):
        mint(TEST_SECRET, sub="u", role="admin", broadcast="b1")


@pytest.mark.parametrize(("make", "status", "code"), [
    (lambda: None, 401, "TOKEN_MISSING"),
    (lambda: mint(TEST_SECRET, sub="h", role="host", broadcast="*", ttl=-5), 401, "TOKEN_EXPIRED"),
    (lambda: mint("not-the-server-secret-0123456789abcdef", sub="h", role="host", broadcast="*"), 401, "TOKEN_INVALID"),
    (lambda: mint(TEST_SECRET, sub="v", role="viewer", broadcast="*"), 403, "FORBIDDEN"),
])
async def test_http_answers_for_bad_tokens(server, make, status, code):
    """Creating a broadcast needs a host token: the REST error says why a token is not enough."""
    token = make()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/broadcasts", json={"id": "x1", "title": "T"}, headers=headers) as r:
            assert r.status == status
            assert (await r.json())["error"]["code"] == code
