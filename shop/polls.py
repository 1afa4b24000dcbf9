"""Polls: one active poll per broadcast, one vote per viewer, counted atomically in Redis.

Keys (hash tag = broadcast):
  hub:{bc}:poll             string  id of the active poll
  hub:{bc}:poll:<id>        hash    question, options (JSON), n, state, opened_at, closes_at, closed_at
  hub:{bc}:poll:<id>:votes  hash    user -> option index     (HSETNX: the first vote stands)
  hub:{bc}:poll:<id>:tally  hash    option index -> count
  hub:{bc}:poll:<id>:times  zset    user -> server ms of their vote (a quiz ranks correct answers by it)

A quiz is a poll with a `correct` option, kept hidden until the poll closes (shop/quizzes.py).

A vote is one Lua script: check open (Redis TIME < closes_at), HSETNX the vote, HINCRBY the
tally only when the HSETNX won (and mark the poll dirty), return the tallies. A retried vote
returns the first answer."""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from domain import Code, DomainError
from shop.keys import key as _k

POLL_TTL_S = 7 * 24 * 3600  # closed polls are kept a week
DIRTY_KEY = "hub:polls:dirty"  # "bc|poll" whose tallies changed since they were last published


@dataclass
class Poll:
    id: str
    broadcast: str
    question: str
    options: list[str]
    state: str  # open | closed
    opened_at: int
    closes_at: int
    closed_at: int | None
    tallies: list[int]
    correct: int | None = None  # a quiz's answer: None for a poll; shown only once closed
    quiz: bool = False

    @property
    def total(self) -> int:
        return sum(self.tallies)

    def to_dict(self) -> dict[str, Any]:
        d = {**asdict(self), "total": self.total}
        if self.state != "closed":
            d["correct"] = None  # a quiz's answer stays secret while it is open
        return d


_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

_CREATE = _NOW + """
-- KEYS: active, poll, ARGV: id, question, options-json, n, duration-ms, ttl-s, poll key prefix, correct ('' = a poll)
local active = redis.call('GET', KEYS[1])
if active then
  local st = redis.call('HGET', ARGV[7] .. active, 'state')
  if st == 'open' then return {'POLL_ACTIVE', active} end
end
local closes = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'question', ARGV[2], 'options', ARGV[3], 'n', ARGV[4],
           'state', 'open', 'opened_at', now, 'closes_at', closes, 'closed_at', '', 'correct', ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('SET', KEYS[1], ARGV[1])
return {'OK', tostring(closes)}
"""

_VOTE = _NOW + """
-- KEYS: poll, votes, tally, times (one slot)   ARGV: user, option, ttl-s
local p = redis.call('HMGET', KEYS[1], 'state', 'closes_at', 'n')
if not p[1] then return {'POLL_NOT_FOUND'} end
local n = tonumber(p[3])
local opt = tonumber(ARGV[2])
local first = 1
local chosen = redis.call('HGET', KEYS[2], ARGV[1])
if chosen then
  first = 0
else
  if p[1] ~= 'open' or now >= tonumber(p[2]) then return {'POLL_CLOSED'} end
  if opt >= n then return {'BAD_OPTION'} end
  redis.call('HSET', KEYS[2], ARGV[1], opt)
  redis.call('HINCRBY', KEYS[3], opt, 1)
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
  redis.call('ZADD', KEYS[4], now, ARGV[1])  -- when it was received (quizzes rank by it)
  redis.call('EXPIRE', KEYS[4], ARGV[3])
  chosen = opt
end
local counts = {}
for i = 0, n - 1 do counts[#counts + 1] = tonumber(redis.call('HGET', KEYS[3], i) or '0') end
return {'OK', first, tonumber(chosen), cjson.encode(counts)}
"""

_CLOSE = _NOW + """
-- KEYS: poll, active   ARGV: id, only-if-due ('1' from the timer)
local p = redis.call('HMGET', KEYS[1], 'state', 'closes_at')
if not p[1] then return 'POLL_NOT_FOUND' end
if p[1] ~= 'open' then return 'POLL_CLOSED' end
if ARGV[2] == '1' and now < tonumber(p[2]) then return 'NOT_YET' end
redis.call('HSET', KEYS[1], 'state', 'closed', 'closed_at', now)
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 'OK'
"""


class PollStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis
        self._create = redis.register_script(_CREATE)
        self._vote = redis.register_script(_VOTE)
        self._close = redis.register_script(_CLOSE)

    async def create(self, broadcast: str, question: str, options: list[str], duration_ms: int,
                     correct: int | None = None) -> Poll:
        poll_id = uuid.uuid4().hex[:12]
        res = await self._create(keys=[_k(broadcast, "poll"), _k(broadcast, "poll", poll_id)],
                                 args=[poll_id, question, orjson.dumps(options), len(options), duration_ms, POLL_TTL_S,
                                       _k(broadcast, "poll", ""), "" if correct is None else correct])
        if res[0] == b"POLL_ACTIVE":
            raise DomainError(Code.POLL_ACTIVE, "close the active poll first", poll_id=res[1].decode())
        poll = await self.get(broadcast, poll_id)
        assert poll is not None
        return poll

    async def get(self, broadcast: str, poll_id: str) -> Poll | None:
        async with self._r.pipeline(transaction=False) as p:
            p.hgetall(_k(broadcast, "poll", poll_id))
            p.hgetall(_k(broadcast, "poll", poll_id, "tally"))
            raw, tally = await p.execute()
        if not raw:
            return None
        h = {k.decode(): val.decode() for k, val in raw.items()}
        n = int(h["n"])
        counts = {int(k): int(val) for k, val in tally.items()}
        return Poll(id=h["id"], broadcast=broadcast, question=h["question"], options=orjson.loads(h["options"]),
                    state=h["state"], opened_at=int(h["opened_at"]), closes_at=int(h["closes_at"]),
                    closed_at=int(h["closed_at"]) if h.get("closed_at") else None,
                    tallies=[counts.get(i, 0) for i in range(n)],
                    correct=int(h["correct"]) if h.get("correct") else None, quiz=bool(h.get("correct")))

    async def active(self, broadcast: str) -> Poll | None:
        poll_id = await self._r.get(_k(broadcast, "poll"))
        if not poll_id:
            return None
        return await self.get(broadcast, poll_id.decode() if isinstance(poll_id, bytes) else poll_id)

    async def vote_of(self, broadcast: str, poll_id: str, user: str) -> int | None:
        raw = await self._r.hget(_k(broadcast, "poll", poll_id, "votes"), user)
        return int(raw) if raw is not None else None

    async def vote(self, broadcast: str, poll_id: str, user: str, option: int) -> tuple[bool, int, list[int]]:
        """(counted now?, the viewer's option, tallies). A repeat returns the first vote, uncounted."""
        res = await self._vote(keys=[_k(broadcast, "poll", poll_id), _k(broadcast, "poll", poll_id, "votes"),
                                     _k(broadcast, "poll", poll_id, "tally"), _k(broadcast, "poll", poll_id, "times")],
                               args=[user, option, POLL_TTL_S])
        code = res[0].decode()
        if code == "OK" and int(res[1]):  # counted: mark the tally dirty (another slot on a cluster)
            await self._r.sadd(DIRTY_KEY, f"{broadcast}|{poll_id}")
        if code == "POLL_NOT_FOUND":
            raise DomainError(Code.POLL_NOT_FOUND, f"no poll {poll_id!r}")
        if code == "POLL_CLOSED":
            raise DomainError(Code.POLL_CLOSED, "the poll is closed")
        if code == "BAD_OPTION":
            raise DomainError(Code.VALIDATION, "option is out of range", field="option")
        return bool(res[1]), int(res[2]), orjson.loads(res[3])

    async def take_dirty(self, limit: int = 200) -> list[tuple[str, str]]:
        """Polls whose tallies changed; taken (SPOP) before they are read, so a vote that lands
        after the read marks its poll again and is published next time."""
        raw = cast("list[bytes] | None", await self._r.spop(DIRTY_KEY, limit))  # with a count: a list
        pairs = (x.decode().partition("|") for x in raw or [])  # members are "<broadcast>|<poll id>"
        return [(broadcast, poll_id) for broadcast, _, poll_id in pairs]

    async def tallies(self, broadcast: str, poll_id: str) -> list[int] | None:
        poll = await self.get(broadcast, poll_id)
        return poll.tallies if poll else None

    async def close(self, broadcast: str, poll_id: str, *, only_if_due: bool = False) -> str:
        """'OK' once (the caller that closed it announces it), else POLL_CLOSED / POLL_NOT_FOUND / NOT_YET."""
        res = await self._close(keys=[_k(broadcast, "poll", poll_id), _k(broadcast, "poll")],
                                args=[poll_id, "1" if only_if_due else "0"])
        return cast(bytes, res).decode()
