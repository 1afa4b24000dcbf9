"""`hawker demo`: an embedded Redis, a seeded demo shop and the server, all stopped by one Ctrl-C."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from live.auth import mint
from live.config import Config
from live.embedded_redis import EmbeddedRedis

DEMO_BROADCAST = "demo"


def run_demo(config: Config) -> int:
    from live.server import serve

    data_dir = Path(config.data_dir)
    redis = EmbeddedRedis(data_dir / "redis").start()
    try:
        config = config.with_(redis_url=redis.url, demo=True, workers=1)
        asyncio.run(_seed(config))
        host = mint(config.secret, sub="demo-host", role="host", broadcast=DEMO_BROADCAST, name="Demo Host")
        print("Hawker demo is running", flush=True)
        print(f"  studio: {config.base_url}/studio?token={host}", flush=True)
        print(f"  player: {config.base_url}/watch/{DEMO_BROADCAST}", flush=True)
        print(f"  redis:  {redis.url} (data in {data_dir}/redis)", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        return serve(config)
    finally:
        redis.stop()


async def _seed(config: Config) -> None:
    from live.seed import seed_demo
    from live.store import connect

    client = connect(config.redis_url)
    try:
        await seed_demo(client, DEMO_BROADCAST, host_sub="demo-host")
    finally:
        await client.aclose()
    os.environ.setdefault("HAWKER_DEMO", "1")
