"""/healthz (alive), /readyz (Redis reachable, else 503 REDIS_UNAVAILABLE), /metrics (Prometheus text)."""
import os

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.redis_proc import RedisProcess, free_port
from tests.serving import serving


async def test_healthz_and_readyz(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/healthz") as r:
            assert r.status == 200
            body = await r.json()
            assert body["status"] == "ok"
            assert body["pid"] == os.getpid()  # served in the test process
        async with http.get(server.url + "/readyz") as r:
            assert r.status == 200
            assert (await r.json()) == {"status": "ready"}


async def test_readyz_503_when_nothing_listens_on_the_redis_port():
    """The health routes alone on a client whose Redis port has nothing behind it (the full app
    started before Redis is tested below)."""
    from aiohttp import web

    from live import health
    from live.errors import error_middleware
    from live.store import connect

    app = web.Application(middlewares=[error_middleware])
    app["redis"] = connect(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    health.setup(app)
    try:
        async with serving(app) as url, aiohttp.ClientSession() as http:
            async with http.get(f"{url}/readyz") as r:
                assert r.status == 503
                assert r.content_type == "application/json"
                assert (await r.json())["error"]["code"] == "REDIS_UNAVAILABLE"
            async with http.get(f"{url}/healthz") as r:  # alive all the same
                assert r.status == 200
    finally:
        await app["redis"].aclose()


async def test_readyz_follows_redis_going_down_and_up(make_server):
    own = RedisProcess().start()
    try:
        node = await make_server(redis_url=own.url, redis_timeout_s=0.5)
        async with aiohttp.ClientSession() as http:
            assert (await http.get(node.url + "/readyz")).status == 200
            own.stop()
            async with http.get(node.url + "/readyz") as r:
                assert r.status == 503
                assert (await r.json())["error"]["code"] == "REDIS_UNAVAILABLE"
            own.start()  # same port and folder
            async with http.get(node.url + "/readyz") as r:
                assert r.status == 200
    finally:
        own.cleanup()


async def test_metrics_is_prometheus_text_and_counts_requests(server):
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            await (await http.get(server.url + "/nope")).read()
        async with http.get(server.url + "/metrics") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "hawker_process_up" in families
    assert "hawker_event_loop_lag_seconds" in families
    not_found = [s.value for s in families["hawker_http_requests"].samples
                 if s.name == "hawker_http_requests_total" and s.labels == {"method": "GET", "status": "404"}]
    assert not_found and not_found[0] >= 3


async def test_a_node_started_before_redis_comes_up_and_serves_once_it_is_there(make_server, token):
    """Orchestrators start nodes and Redis in any order: the node starts, says 503 on /readyz, and
    works (sockets, commands) as soon as Redis answers."""
    import asyncio

    import socketio

    from live.store import connect
    from shop.broadcasts import BroadcastStore

    own = RedisProcess()  # not started yet: nothing listens on its port
    try:
        node = await make_server(redis_url=own.url, redis_timeout_s=0.5)
        async with aiohttp.ClientSession() as http:
            async with http.get(node.url + "/healthz") as r:
                assert r.status == 200
            async with http.get(node.url + "/readyz") as r:
                assert r.status == 503 and (await r.json())["error"]["code"] == "REDIS_UNAVAILABLE"
            own.start()
            for _ in range(100):
                async with http.get(node.url + "/readyz") as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.1)
            assert r.status == 200
        client = connect(own.url)
        await BroadcastStore(client).ensure("late", title="Late start", host="h1", products=[])
        await client.aclose()
        sio = socketio.AsyncClient(reconnection=False)
        snapshots: list = []
        sio.on("snapshot", lambda data: snapshots.append(data))
        await sio.connect(node.url, auth={"token": token("viewer", "late", "v1")}, transports=["websocket"],
                          wait_timeout=15)
        try:
            ack = await sio.call("time", {}, timeout=15)
            assert ack["ok"] is True and ack["now"] > 0
            for _ in range(100):
                if snapshots:
                    break
                await asyncio.sleep(0.05)
            assert snapshots and snapshots[0]["broadcast"]["id"] == "late"
        finally:
            await sio.disconnect()
    finally:
        own.cleanup()
