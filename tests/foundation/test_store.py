"""One Redis pool per process with timeouts and retries; Lua scripts by EVALSHA with NOSCRIPT fallback."""
from live.store import RETRIES, connect
from tests.redis_proc import RedisProcess

SCRIPT = "redis.call('INCRBY', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])"


async def test_app_parts_share_the_one_pool(server):
    assert server.app["node"].redis is server.app["redis"]
    pool = server.app["redis"].connection_pool
    assert pool.max_connections == server.config.redis_max_connections
    assert pool.timeout == server.config.redis_wait_ms / 1000  # a blocking pool: a burst waits
    assert pool.connection_kwargs["socket_timeout"] == server.config.redis_timeout_s
    assert pool.connection_kwargs["retry"]._retries == RETRIES


async def test_registered_script_survives_a_script_flush(redis_url, redis):
    client = connect(redis_url, timeout_s=2)
    try:
        incr = client.register_script(SCRIPT)
        assert await incr(keys=["n"], args=[2]) == b"2"
        await redis.script_flush()  # as after a Redis restart: EVALSHA answers NOSCRIPT
        assert await incr(keys=["n"], args=[3]) == b"5"
        async with client.pipeline(transaction=False) as pipe:
            await redis.script_flush()
            await incr(keys=["n"], args=[1], client=pipe)  # queued; loaded before the pipeline runs
            assert await pipe.execute() == [b"6"]
    finally:
        await client.aclose()


async def test_commands_ride_out_a_redis_restart():
    own = RedisProcess().start()
    client = connect(own.url, timeout_s=2)
    try:
        await client.set("k", "v")
        own.restart()  # AOF keeps the data; the pooled connection is dead and must be replaced
        assert await client.get("k") == b"v"
    finally:
        await client.aclose()
        own.cleanup()


async def test_blocking_reads_are_not_timed_as_round_trips(redis_url):
    """hawker_redis_seconds is a round-trip figure (the load test reports its p99 as the server's
    Redis latency); an XREAD BLOCK that waited 200 ms for nothing is not a slow Redis."""
    from redislayer import connect as connect_timed
    from tests.conftest import CLUSTER
    seen: list[str] = []
    client = connect_timed(redis_url, timer=lambda op, _s: seen.append(op), mode="cluster" if CLUSTER else "standalone")
    try:
        await client.xread({"{s}:empty": "$"}, count=1, block=200)
        await client.xread({"{s}:empty": "0"}, count=1)  # no BLOCK: a round trip
        await client.get("{s}:k")
    finally:
        await client.aclose()
    assert seen.count("XREAD") == 1 and "GET" in seen
