"""Demo data: a small shop and one broadcast, written idempotently."""
from __future__ import annotations

import redis.asyncio as aioredis


async def seed_demo(redis: aioredis.Redis, broadcast_id: str, host_sub: str) -> None:
    """Placeholder until the broadcast store lands: records that the demo was seeded."""
    await redis.hset(f"demo:{broadcast_id}", mapping={"host": host_sub})
