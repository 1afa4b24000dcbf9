"""Every failure is {"error": {"code", "message"}} JSON with a stable code: never HTML, never a traceback.

Statuses the production routes cannot all be driven to on demand are exercised on a test-only app
built with the same error middleware and helpers (read_json, auth.require)."""
import logging

import aiohttp
import pytest
from aiohttp import web

from domain import Code, DomainError
from live.auth import require
from live.config import Config
from live.errors import error_middleware, read_json
from tests.conftest import TEST_SECRET
from tests.redis_proc import free_port


async def _echo(request: web.Request) -> web.Response:
    data = await read_json(request)
    if not isinstance(data, dict) or "qty" not in data:
        raise DomainError(Code.VALIDATION, "qty is required", field="qty")
    return web.json_response(data)


async def _host_only(request: web.Request) -> web.Response:
    claims = require(request, roles=("host",), broadcast="b1")
    return web.json_response({"sub": claims.sub})


async def _crash(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals /srv/app.py line 3")


async def _raw_body(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


async def _aiohttp_bad_request(request: web.Request) -> web.Response:
    raise web.HTTPBadRequest(text="<html>nope</html>", content_type="text/html")


@pytest.fixture
async def test_app_url():
    app = web.Application(middlewares=[error_middleware], client_max_size=1024)
    app["config"] = Config(secret=TEST_SECRET, max_request_bytes=1024)
    app.router.add_post("/echo", _echo)
    app.router.add_get("/host", _host_only)
    app.router.add_get("/crash", _crash)
    app.router.add_post("/raw", _raw_body)
    app.router.add_get("/bad", _aiohttp_bad_request)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def _error(resp: aiohttp.ClientResponse) -> dict:
    assert resp.content_type == "application/json", await resp.text()
    body = await resp.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str) and body["error"]["code"].isupper()
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("POST", "/echo", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "INVALID_JSON"),
        ("GET", "/bad", {}, 400, "BAD_REQUEST"),
        ("GET", "/host", {}, 401, "TOKEN_MISSING"),
        ("GET", "/nowhere", {}, 404, "NOT_FOUND"),
        ("DELETE", "/echo", {}, 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/echo", {"json": {"pad": "x" * 2000}}, 413, "PAYLOAD_TOO_LARGE"),
        ("POST", "/raw", {"data": b"x" * 5000}, 413, "PAYLOAD_TOO_LARGE"),  # aiohttp's own client_max_size
        ("POST", "/echo", {"data": b"qty=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
         415, "UNSUPPORTED_MEDIA_TYPE"),
        ("POST", "/echo", {"json": {"other": 1}}, 422, "VALIDATION"),
        ("GET", "/crash", {}, 500, "INTERNAL"),
    ],
)
async def test_error_statuses_are_json(test_app_url, method, path, kwargs, status, code, caplog):
    caplog.set_level(logging.WARNING)
    async with aiohttp.ClientSession() as http:
        async with http.request(method, test_app_url + path, **kwargs) as r:
            assert r.status == status
            err = await _error(r)
            assert err["code"] == code
    if status < 500:  # a client's mistake is not a server error: nothing logged as one
        assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


async def test_405_keeps_allow_header(test_app_url):
    async with aiohttp.ClientSession() as http:
        async with http.delete(test_app_url + "/echo") as r:
            assert r.status == 405
            assert "POST" in r.headers["Allow"]


async def test_422_details_sit_inside_error(test_app_url):
    async with aiohttp.ClientSession() as http:
        async with http.post(test_app_url + "/echo", json={"other": 1}) as r:
            assert (await _error(r))["field"] == "qty"


async def test_500_hides_the_traceback_and_logs_it_once(test_app_url, caplog):
    caplog.set_level(logging.ERROR, logger="hawker.http")
    async with aiohttp.ClientSession() as http:
        async with http.get(test_app_url + "/crash") as r:
            text = await r.text()
    assert "secret internals" not in text and "Traceback" not in text
    logged = [rec for rec in caplog.records if rec.name == "hawker.http"]
    assert len(logged) == 1 and logged[0].exc_info is not None


async def test_401_and_403_from_tokens(test_app_url, token):
    async with aiohttp.ClientSession() as http:
        async with http.get(test_app_url + "/host", headers={"Authorization": "Bearer garbage"}) as r:
            assert r.status == 401 and (await _error(r))["code"] == "TOKEN_INVALID"
        async with http.get(test_app_url + "/host", headers={"Authorization": f"Bearer {token('viewer', 'b1')}"}) as r:
            assert r.status == 403 and (await _error(r))["code"] == "FORBIDDEN"
        async with http.get(test_app_url + "/host", headers={"Authorization": f"Bearer {token('host', 'b2')}"}) as r:
            assert r.status == 403 and (await _error(r))["code"] == "FORBIDDEN"
        async with http.get(test_app_url + "/host", headers={"Authorization": f"Bearer {token('host', 'b1', 'h')}"}) as r:
            assert r.status == 200 and (await r.json()) == {"sub": "h"}


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/no/such/route", 404, "NOT_FOUND"),
    ("POST", "/healthz", 405, "METHOD_NOT_ALLOWED"),
    ("GET", "/api/broadcasts", 401, "TOKEN_MISSING"),
])
async def test_production_app_answers_json_errors(server, method, path, status, code):
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.url + path) as r:
            assert r.status == status
            assert (await _error(r))["code"] == code


async def test_production_app_refuses_oversized_body_as_json(make_server, token):
    node = await make_server(max_request_bytes=2048)
    headers = {"Authorization": f"Bearer {token('host', 'big', 'h')}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(node.url + "/api/broadcasts", data=b"{" + b" " * 10_000 + b"}",
                             headers={**headers, "Content-Type": "application/json"}) as r:
            assert r.status == 413
            assert (await _error(r))["code"] == "PAYLOAD_TOO_LARGE"
