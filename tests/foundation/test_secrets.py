"""Secrets stay out of logs and Referers; pages say who may frame them; /metrics is not for strangers.

The access log is read from a real `hawker serve` process's output (the way an operator reads it)."""
from __future__ import annotations

import signal
import subprocess

import aiohttp
import pytest

from live.auth import mint
from tests.conftest import TEST_SECRET
from tests.foundation.procs import hawker, stop, wait_http
from tests.redis_proc import free_port


async def test_the_access_log_never_holds_a_token(redis_url) -> None:
    jwt = mint(TEST_SECRET, sub="h1", role="host", broadcast="b1")
    port = free_port()
    proc = hawker("serve", "--port", str(port), "--redis-url", redis_url, "--log-level", "info",
                  env={"HAWKER_SECRET": TEST_SECRET, "HAWKER_PAYMENT_PROVIDER": "sandbox"},
                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_http(url + "/healthz", proc)
        async with aiohttp.ClientSession() as http:
            for path, headers in [
                (f"/studio?token={jwt}", {}),  # the old demo link
                (f"/watch/b1?lang=ko&token={jwt}", {}),
                ("/static/hawker/hawker.css", {"Referer": f"{url}/studio?token={jwt}"}),  # an old browser's Referer
                (f"/socket.io/?EIO=4&transport=polling&token={jwt}", {}),  # a socket connecting with ?token=
                (f"/api/orders?access_token={jwt}", {"User-Agent": f"agent {jwt}"}),
            ]:
                async with http.get(url + path, headers=headers) as r:
                    await r.read()
    finally:
        stop(proc, signal.SIGTERM)
    log = proc.stderr.read() if proc.stderr else ""
    assert "GET /studio?token=[redacted]" in log, log[-2000:]  # the request is logged...
    assert "/socket.io/?EIO=4&transport=polling&token=[redacted]" in log
    assert jwt not in log and jwt.split(".")[2] not in log  # ...its token is not


async def test_every_response_says_no_referrer_and_pages_say_who_may_frame_them(make_server) -> None:
    srv = await make_server()
    async with aiohttp.ClientSession() as http:
        for path in ["/studio", "/watch/b1", "/static/hawker/hawker.css", "/healthz", "/api/orders", "/nope"]:
            async with http.get(srv.url + path) as r:
                assert r.headers.get("Referrer-Policy") == "no-referrer", path
        async with http.get(srv.url + "/watch/b1") as r:
            assert r.headers["Content-Security-Policy"] == "frame-ancestors 'self'"  # outside demo: own origin only
            assert 'data-embed-origins="[]"' in await r.text()
        async with http.get(srv.url + "/studio") as r:
            assert r.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
            assert r.headers["X-Frame-Options"] == "DENY"
    shop = await make_server(embed_origins="https://shop.example, https://m.shop.example:8443/, javascript:alert(1), "
                                           "https://x.example; script-src *")
    demo = await make_server(demo=True)
    async with aiohttp.ClientSession() as http:
        async with http.get(shop.url + "/watch/b1") as r:
            assert r.headers["Content-Security-Policy"] == \
                "frame-ancestors 'self' https://shop.example https://m.shop.example:8443"  # bad entries dropped
            assert "https://shop.example" in await r.text()
        async with http.get(demo.url + "/watch/b1") as r:
            assert r.headers["Content-Security-Policy"] == "frame-ancestors *"  # demo: any page may embed


async def test_metrics_with_a_token_answers_only_the_bearer(make_server) -> None:
    srv = await make_server(metrics_token="scrape-me-0123456789")
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic c2NyYXBlLW1l"}):
            async with http.get(srv.url + "/metrics", headers=headers) as r:
                assert r.status == 401
                body = await r.text()
                assert (await r.json())["error"]["code"] == "UNAUTHORIZED" and "hawker_" not in body
        async with http.get(srv.url + "/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"}) as r:
            assert r.status == 200 and "hawker_process_up" in await r.text()


async def test_metrics_on_a_separate_internal_port(make_server) -> None:
    mport = free_port()
    srv = await make_server(metrics_port=mport)
    async with aiohttp.ClientSession() as http:
        async with http.get(srv.url + "/metrics") as r:
            assert r.status == 404  # the public port does not serve it
        async with http.get(f"http://127.0.0.1:{mport}/metrics") as r:
            assert r.status == 200 and "hawker_process_up" in await r.text()
        async with http.get(f"http://127.0.0.1:{mport}/api/orders") as r:
            assert r.status == 404  # the internal port serves nothing else


@pytest.mark.parametrize("value", ["", "   "])
def test_no_embed_origins_outside_demo_means_self_only(value: str) -> None:
    from live.config import Config
    from live.headers import embed_origins, player_frame_ancestors

    assert embed_origins(Config(embed_origins=value)) == []
    assert player_frame_ancestors(Config(embed_origins=value)) == "frame-ancestors 'self'"
