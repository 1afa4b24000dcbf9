"""Fuzz every REST route the app serves (read from aiohttp's router at test time, so a new endpoint
is covered without touching this file) with hostile path parameters, query strings, headers and
bodies, as nobody, as viewer, as host and with a forged token. For every request:
  * the answer is not a 500 and an error body never says `INTERNAL`;
  * a refused request (4xx) leaves the lot's stock levels as they were, and the lot's audit holds;
and over the whole run the server logs nothing at ERROR and no traceback."""
from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from shop.broadcasts import BroadcastStore
from tests.fuzz.harness import EXAMPLES, Bridge, LogTrap, drive, fuzz_settings
from tests.fuzz.strategies import STRANGE_TEXT, values

PRODUCTS = [{"id": "p1", "title": "Linen shirt", "price": 12900, "currency": "KRW"}]
PARAM = re.compile(r"\{([^}]+)\}")
CONTENT_TYPES = ("application/json", "application/json", "application/sdp", "application/trickle-ice-sdpfrag",
                 "text/plain", "application/x-www-form-urlencoded", None)


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/api/broadcasts/{broadcast}"; a static folder gets "/{tail}"


def routes(app: Any) -> list[Route]:
    out = []
    for r in app.router.routes():
        if r.method == "HEAD":
            continue
        info = r.resource.get_info()
        if "directory" in info:  # a static folder: any path under its prefix
            template = info["prefix"].rstrip("/") + "/{tail}"
        else:
            template = info.get("formatter") or info.get("path") or r.resource.canonical
        out.append(Route(r.method, template))
    return sorted(set(out), key=lambda x: (x.template, x.method))


def segments(anchors: tuple[str, ...]) -> st.SearchStrategy[str]:
    """A path parameter: a real id, or something hostile."""
    hostile = STRANGE_TEXT.filter(lambda s: 0 < len(s) < 3000).map(
        lambda s: s.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
    return st.one_of(st.sampled_from(anchors), hostile, st.sampled_from(["..", "%2e%2e", "a/../../b", "index.m3u8",
                                                                        "seg-1.ts", "x" * 300]))


@st.composite
def requests(draw: st.DrawFn, route_list: list[Route], anchors: tuple[str, ...], tokens: dict[str, str]) -> dict:
    route = draw(st.sampled_from(route_list))
    path = PARAM.sub(lambda m: quote(draw(segments(anchors)), safe="/" if m.group(1) == "tail" else ""),
                     route.template)
    query = draw(st.dictionaries(st.sampled_from(["limit", "since", "cursor", "token", "broadcast", "EIO", "sid",
                                                  "transport", "t", "state"]),
                                 st.one_of(st.sampled_from(["-1", "0", "1", "10" * 20, "NaN", "", "b1", "4",
                                                            "polling"]), st.text(max_size=20)), max_size=3))
    who = draw(st.sampled_from(sorted(tokens)))
    headers = {"Authorization": tokens[who]} if tokens[who] else {}
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(st.one_of(st.text(min_size=1, max_size=20).filter(str.isprintable),
                                                    st.sampled_from(["k1", "x" * 300])))
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    body_kind = draw(st.sampled_from(["json", "json", "json", "bytes", "none", "deep"]))
    if body_kind == "json":
        body: bytes | None = json.dumps(draw(values("json", anchors)), ensure_ascii=True, allow_nan=True).encode()
    elif body_kind == "deep":
        body = b"[" * draw(st.integers(100, 5000))
    elif body_kind == "bytes":
        body = draw(st.binary(max_size=200))
    else:
        body = None
    if ctype is not None and body is not None:
        headers["Content-Type"] = ctype
    # inside a real session (POST only: a GET poll would wait for data up to the ping interval)
    polling = route.template.startswith("/socket.io") and route.method == "POST" and draw(st.booleans())
    if polling and draw(st.booleans()):
        body = draw(st.sampled_from([b"40", b'40{"token":"x"}', b"42[\"time\",{}]", b"4", b"2", b"1", b"\x1e\x1e",
                                     b"bAAAA", b"b!!!", b"\xff\xfe", b"6", b"40\x1e42[1]", b"0"]))
    return {"method": route.method, "path": path, "query": query, "headers": headers, "body": body,
            "route": route, "who": who, "polling": polling}


async def test_every_rest_route_survives_hostile_requests(make_server, redis, token) -> None:
    srv = await make_server()
    sales = srv.app["node"].sales
    await BroadcastStore(redis).ensure("b1", title="Fuzz", host="h1", products=PRODUCTS)
    table = routes(srv.app)
    assert len(table) >= 20, table  # the whole router, not a handful
    tokens = {"nobody": "", "viewer": f"Bearer {token('viewer', 'b1', 'v1')}",
              "host": f"Bearer {token('host', 'b1', 'h1')}", "forged": "Bearer " + token("host", "b1", "h1")[:-4] + "AAAA",
              "garbage": "Basic dXNlcjpwYXNz"}
    sale = await sales.schedule(_host_caller(), {"product_id": "p1", "units": 5, "limit": 2, "hold_s": 3600})
    lot = sale["sale"]["id"]
    anchors = ("b1", "p1", lot, "h1", "v1")
    inv = sales.inv
    seen: dict[int, int] = {}
    driven: set[Route] = set()
    loop = asyncio.get_running_loop()

    async def one(session: aiohttp.ClientSession, req: dict) -> None:
        before = await inv.snapshot(lot)
        if req.get("polling"):  # an Engine.IO long-polling session to send the request into
            async with session.get(srv.url + "/socket.io/", params={"EIO": "4", "transport": "polling"}) as resp:
                opened = await resp.text()
            sid = json.loads(opened[1:])["sid"]
            req = {**req, "query": {"EIO": "4", "transport": "polling", "sid": sid}}
        async with session.request(req["method"], srv.url + req["path"], params=req["query"], headers=req["headers"],
                                   data=req["body"], allow_redirects=False) as resp:
            text = await resp.read()
            status = resp.status
        driven.add(req["route"])
        seen[status] = seen.get(status, 0) + 1
        assert status < 500 or status == 503 and b"INTERNAL" not in text, (status, text[:300], req)
        if status >= 400 and resp.content_type == "application/json":
            assert b'"INTERNAL"' not in text, (text[:300], req)
        if status >= 400:
            assert await inv.snapshot(lot) == before, f"refused {status} but stock changed: {req}"
        report = await inv.audit(lot)
        assert report.ok, report.problems

    with LogTrap() as trap:
        async with aiohttp.ClientSession(skip_auto_headers=("Content-Type",)) as session:
            for route in table:  # every route at least once, as host with an empty JSON object
                path = PARAM.sub(lambda m: "b1" if m.group(1) != "tail" else "x.js", route.template)
                await one(session, {"method": route.method, "path": path, "query": {}, "route": route,
                                    "headers": {"Authorization": tokens["host"], "Content-Type": "application/json"},
                                    "body": b"{}", "who": "host"})
            bridge = Bridge(loop)

            @fuzz_settings(max(50, EXAMPLES * 2 // 3))
            @given(data=st.data())
            def fuzz(data: st.DataObject) -> None:
                req = data.draw(requests(table, anchors, tokens), label="request")
                bridge.run(one(session, req))

            await drive(fuzz)
    print("REST answers by status:", dict(sorted(seen.items())))
    assert driven == set(table), sorted(set(table) - driven)
    assert not trap.bad, trap.bad[:20]


def _host_caller() -> Any:
    from live.hub.registry import Caller

    return Caller(sid="fuzz", user="h1", name="h1", role="host", broadcast="b1")


async def test_static_names_too_long_for_the_file_system_are_not_found(server) -> None:
    """Found by the fuzz: aiohttp's static handler let "file name too long" escape as a 500 INTERNAL."""
    with LogTrap() as trap:
        async with aiohttp.ClientSession() as session:
            for name in ("x" * 300, "a/" + "y" * 256, "z" * 2000):
                async with session.get(f"{server.url}/static/{name}") as resp:
                    assert resp.status == 404, (name[:20], resp.status)
                    assert (await resp.json())["error"]["code"] == "NOT_FOUND"
            async with session.get(f"{server.url}/static/hawker/watch.js") as resp:
                assert resp.status == 200  # real files are still served
    assert not trap.bad, trap.bad
