"""`hawker demo`: an embedded Redis, a seeded demo shop and the server, all stopped by one Ctrl-C."""
from __future__ import annotations

import asyncio
from pathlib import Path

from live.auth import mint
from live.config import Config
from live.embedded_redis import EmbeddedRedis

DEMO_BROADCAST = "demo"
DEMO_HOST = "demo-host"


def run_demo(config: Config) -> int:
    """Start redis-server (AOF in DATA_DIR/redis), seed, serve one process until SIGINT/SIGTERM,
    then stop redis-server too. Returns the exit code."""
    from live.server import serve

    data_dir = Path(config.data_dir)
    redis = EmbeddedRedis(data_dir / "redis")
    try:
        redis.start()
        config = config.with_(redis_url=redis.url, demo=True, workers=1,
                              payment_provider=config.payment_provider or "sandbox")
        asyncio.run(_seed(config))
        host = mint(config.secret, sub=DEMO_HOST, role="host", broadcast=DEMO_BROADCAST, name="Demo Host")

        def announce() -> None:  # once the port answers, so the printed URLs work when read
            print("Hawker demo is running", flush=True)
            print(f"  studio: {config.base_url}/studio#token={host}", flush=True)  # a fragment: never sent, never logged
            print(f"  player: {config.base_url}/watch/{DEMO_BROADCAST}", flush=True)
            print(f"  report: {config.base_url}/studio/report/{DEMO_BROADCAST}#token={host}", flush=True)
            print(f"  redis:  {redis.url} ({redis.binary}, data in {data_dir / 'redis'})", flush=True)
            print("Press Ctrl-C to stop.", flush=True)

        return serve(config, on_ready=announce)
    except KeyboardInterrupt:  # Ctrl-C before the server installed its handlers
        return 0
    except RuntimeError as exc:  # no redis-server, or it would not start
        print(f"hawker demo: {exc}", flush=True)
        return 1
    finally:
        redis.stop()


async def _seed(config: Config) -> None:
    from live.seed import seed_demo
    from live.store import connect

    client = connect(config.redis_url)
    try:
        await seed_demo(client, DEMO_BROADCAST, host_sub=DEMO_HOST)
    finally:
        await client.aclose()
