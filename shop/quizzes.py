"""Quizzes: a poll with a correct option, hidden until the poll closes. At the close (once: only
the caller whose close won) the correct voters are ranked by the server time their vote arrived
(Redis TIME in the vote script), and the broadcast's leaderboard adds one correct answer and the
response time (ms from the poll's open to the vote) for each of them.

Keys (hash tag = broadcast):
  hub:{bc}:quiz:names     hash    user -> masked name (remembered at their first quiz vote)
  hub:{bc}:quiz:correct   hash    user -> correct answers
  hub:{bc}:quiz:ms        hash    user -> summed response ms of those answers
  hub:{bc}:quiz:board     zset    user -> correct * 10^9 - min(ms, 10^9 - 1)   (high = better)
  hub:{bc}:quiz:last      string  JSON results of the last closed quiz (the snapshot part)"""
from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from shop.keys import key
from shop.polls import POLL_TTL_S, Poll

TOP = 10
SCALE = 10**9


def _k(bc: str, *parts: str) -> str:
    return key(bc, "quiz", *parts)


def _pk(bc: str, poll_id: str, part: str) -> str:
    return key(bc, "poll", poll_id, part)


_FINISH = """
-- KEYS: votes, times, names, correct, ms, board, last   ARGV: correct option, opened_at, poll id, top, ttl, scale
local votes = redis.call('HGETALL', KEYS[1])
local chosen = {}
for i = 1, #votes, 2 do chosen[votes[i]] = votes[i + 1] end
local times = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local ranking = {}
local right = 0
for i = 1, #times, 2 do
  local user = times[i]
  if chosen[user] == ARGV[1] then
    right = right + 1
    local ms = math.max(0, tonumber(times[i + 1]) - tonumber(ARGV[2]))
    local c = redis.call('HINCRBY', KEYS[4], user, 1)
    local total = redis.call('HINCRBY', KEYS[5], user, ms)
    redis.call('ZADD', KEYS[6], c * tonumber(ARGV[6]) - math.min(total, tonumber(ARGV[6]) - 1), user)
    if #ranking < tonumber(ARGV[4]) then
      ranking[#ranking + 1] = {rank = right, name = redis.call('HGET', KEYS[3], user) or '?', ms = ms}
    end
  end
end
for _, k in ipairs({KEYS[3], KEYS[4], KEYS[5], KEYS[6]}) do redis.call('EXPIRE', k, ARGV[5]) end
local out = cjson.encode({poll_id = ARGV[3], correct = tonumber(ARGV[1]), answered = #times / 2, right = right,
                          ranking = ranking})
redis.call('SET', KEYS[7], out, 'EX', ARGV[5])
return out
"""


class QuizStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis
        self._finish = redis.register_script(_FINISH)

    async def remember(self, broadcast: str, user: str, label: str) -> None:
        await self._r.hset(_k(broadcast, "names"), user, label)

    async def finish(self, broadcast: str, poll: Poll) -> dict[str, Any]:
        """Rank the correct answers of a closed quiz and add them to the leaderboard (call once)."""
        if poll.correct is None:
            raise ValueError(f"poll {poll.id} is not a quiz")
        raw = await self._finish(
            keys=[_pk(broadcast, poll.id, "votes"), _pk(broadcast, poll.id, "times"), _k(broadcast, "names"),
                  _k(broadcast, "correct"), _k(broadcast, "ms"), _k(broadcast, "board"), _k(broadcast, "last")],
            args=[poll.correct, poll.opened_at, poll.id, TOP, POLL_TTL_S, SCALE])
        return self._results(orjson.loads(raw))

    @staticmethod
    def _results(d: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(d.get("ranking"), list):  # cjson writes an empty list as {}
            d["ranking"] = []
        return d

    async def last(self, broadcast: str) -> dict[str, Any] | None:
        raw = await self._r.get(_k(broadcast, "last"))
        return self._results(orjson.loads(raw)) if raw else None

    async def snapshot(self, broadcast: str, user: str) -> dict[str, Any]:
        """The snapshot part: the last quiz's results, the top answerers (most correct, then fastest
        in total) and the caller's own place; one round trip when no quiz has run."""
        async with self._r.pipeline(transaction=False) as p:
            p.get(_k(broadcast, "last"))
            p.zrevrange(_k(broadcast, "board"), 0, TOP - 1)
            p.zrevrank(_k(broadcast, "board"), user)
            p.hget(_k(broadcast, "correct"), user)
            p.hget(_k(broadcast, "ms"), user)
            last, top, rank, mine, my_ms = await p.execute()
        board = await self._rows(broadcast, [u.decode() for u in top])
        me = {"rank": rank + 1, "correct": int(mine or 0), "ms": int(my_ms or 0)} if rank is not None else None
        return {"last": self._results(orjson.loads(last)) if last else None, "leaderboard": board, "me": me}

    async def leaderboard(self, broadcast: str) -> list[dict[str, Any]]:
        """The top answerers: most correct, then the least summed response time."""
        top = await self._r.zrevrange(_k(broadcast, "board"), 0, TOP - 1)
        return await self._rows(broadcast, [u.decode() if isinstance(u, bytes) else str(u) for u in top])

    async def _rows(self, bc: str, users: list[str]) -> list[dict[str, Any]]:
        if not users:
            return []
        async with self._r.pipeline(transaction=False) as p:
            p.hmget(_k(bc, "names"), users)
            p.hmget(_k(bc, "correct"), users)
            p.hmget(_k(bc, "ms"), users)
            names, correct, ms = await p.execute()
        return [{"rank": i + 1, "name": (n or b"?").decode(), "correct": int(c or 0), "ms": int(m or 0)}
                for i, (n, c, m) in enumerate(zip(names, correct, ms))]
