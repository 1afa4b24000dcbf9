"""Chat benchmark: messages/s and µs per message through validation + moderation + rate limit.

    python -m chat.bench [--messages 20000] [--concurrency 64] [--json]

Starts its own redis-server (no persistence) on a free loopback port, then measures on one core
(this one process):
  local    cleaning + blocked words + link policy only (no Redis)
  send     the whole `Chat.send`: local checks + one Lua script (ban, time-out, slow mode, token
           bucket, duplicate) + XADD, one message at a time
  send_c   the same with `--concurrency` sends in flight (what a busy node sees)
  refused  a flooder's messages refused by the token bucket: the first through Redis, the rest by
           the node's local cool-down (no round trip until retry_after)
With --json the last line is one JSON object with every figure."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from chat import Actor, Chat, ChatPolicy, ChatRefused
from redislayer.server import ThrowawayRedis

TEXTS = [
    "wow this looks great", "얼마예요?", "사이즈 어떻게 되나요", "buy 2", "구매 1개", "love the color!!",
    "does it come in blue?", "와 대박 ㅋㅋㅋㅋ", "shipping to busan?", "I want one", "너무 예뻐요 😍",
    "<b>bold</b> move", "is it cotton or linen? need to know before the sale opens", "ㅎㅎ 좋아요",
]


def _timed(fn: Any) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


async def _atimed(coro: Any) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    await coro
    return time.perf_counter() - w0, time.process_time() - c0


def _fig(n: int, wall: float, cpu: float) -> dict[str, float]:
    return {"messages": n, "msgs_per_s": round(n / wall, 1), "us_per_msg": round(wall / n * 1e6, 2),
            "cpu_us_per_msg": round(cpu / n * 1e6, 2)}


async def run(messages: int, concurrency: int) -> dict[str, Any]:
    with ThrowawayRedis(prefix="hawker-chat-bench-") as server:
        client = aioredis.Redis.from_url(server.url, max_connections=concurrency + 8)
        try:
            chat = Chat(client, ChatPolicy(rate_per_s=1000.0, burst=1000, dup_window_s=30))
            users = [Actor(f"user{i}", f"User {i}") for i in range(2000)]
            texts = [f"{TEXTS[i % len(TEXTS)]} #{i}" for i in range(messages)]

            def local() -> None:
                for i, t in enumerate(texts):
                    chat.check_text(users[i % len(users)], t)

            results: dict[str, Any] = {"local": _fig(messages, *_timed(local))}

            for i in range(200):  # warm-up: scripts loaded, pool connected
                await chat.send("warm", users[i % len(users)], f"warm {i}")

            async def sequential() -> None:
                for i, t in enumerate(texts):
                    await chat.send("bench", users[i % len(users)], t)

            results["send"] = _fig(messages, *await _atimed(sequential()))

            async def concurrent() -> None:
                queue = iter(range(messages))

                async def worker() -> None:
                    for i in queue:
                        await chat.send("bench-c", users[i % len(users)], texts[i])

                await asyncio.gather(*(worker() for _ in range(concurrency)))

            results["send_c"] = _fig(messages, *await _atimed(concurrent()))
            results["send_c"]["concurrency"] = concurrency

            tight = Chat(client, ChatPolicy(rate_per_s=0.001, burst=1, dup_window_s=0))
            spammer = Actor("spammer", "Spam")
            await tight.send("bench-r", spammer, "first")
            refused = 0

            async def refusals() -> None:
                nonlocal refused
                for i in range(messages // 2):
                    try:
                        await tight.send("bench-r", spammer, texts[i])
                    except ChatRefused:
                        refused += 1

            results["refused"] = _fig(messages // 2, *await _atimed(refusals()))
            results["refused"]["refused"] = refused
            results["stream_len"] = await client.xlen("chat:{bench}:msgs")
            return results
        finally:
            await client.aclose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chat.bench", description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = p.parse_args(argv)
    res = asyncio.run(run(args.messages, args.concurrency))
    res["cpus"] = os.cpu_count()
    res["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(f"chat bench: {args.messages} messages, one process, redis-server on loopback "
          f"(load average {res['load_avg_1m']} on {res['cpus']} CPUs)")
    for name, label in (("local", "validation only (no Redis)"), ("send", "send, one at a time"),
                        ("send_c", f"send, {args.concurrency} in flight"), ("refused", "refused by rate limit (flood)")):
        r = res[name]
        print(f"  {label:32s} {r['msgs_per_s']:>10,.0f} msg/s  {r['us_per_msg']:>8.1f} µs/msg  "
              f"{r['cpu_us_per_msg']:>8.1f} µs CPU/msg")
    if args.json:
        print(orjson.dumps(res).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
