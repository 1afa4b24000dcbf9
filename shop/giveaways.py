"""Giveaways with a verifiable draw: one open giveaway per broadcast, one entry per user.

The draw, documented so anyone can recompute it (docs/protocol.md "Giveaways"; `hawker giveaway
verify`):

    seed        = 32 random bytes as 64 lowercase hex characters, chosen at open, kept secret
    commitment  = sha256(seed)                       published at open (hex of the ASCII seed)
    entry       = sha256(giveaway_id + ":" + user)[:16 hex]   one per entrant, published at the draw
    entries     = the eligible entries, sorted (ASCII order)
    index       = int(sha256(seed + "\\n" + "\\n".join(entries)), 16) mod len(entries)
    winner      = entries[index]

The seed is fixed (and its hash public) before anyone enters, so the server cannot pick a seed
after seeing who entered; the sorted list makes the order of entry irrelevant.

Keys (hash tag = broadcast):
  hub:{bc}:ga               string  id of the open (or last) giveaway
  hub:{bc}:ga:<id>          hash    title, keyword, must_watch, state (open | drawn | cancelled),
                                    commitment, seed (secret until drawn), opened_at, drawn_at,
                                    winner_entry, winner_user, winner_label, eligible
  hub:{bc}:ga:<id>:entries  hash    entry -> user
  hub:{bc}:present          hash    user -> sockets joined (for "must be watching")"""
from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from domain import Code, DomainError
from shop.keys import key as _k
from shop.keys import text as _s

TTL_S = 30 * 24 * 3600  # a drawn giveaway stays verifiable for 30 days


def commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode("ascii")).hexdigest()


def entry_of(giveaway_id: str, user: str) -> str:
    return hashlib.sha256(f"{giveaway_id}:{user}".encode()).hexdigest()[:16]


def draw_index(seed: str, entries: list[str]) -> int:
    """The documented formula; `entries` must be sorted and not empty."""
    digest = hashlib.sha256((seed + "\n" + "\n".join(entries)).encode("ascii")).hexdigest()
    return int(digest, 16) % len(entries)


def verify(record: dict[str, Any]) -> list[str]:
    """Problems with a published draw (the JSON of GET /api/giveaways/{id}); [] = it checks out."""
    problems = []
    seed, entries = record.get("seed"), record.get("entries")
    if not isinstance(seed, str) or not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        return ["the record has no seed or entry list (is the giveaway drawn?)"]
    if commitment(seed) != record.get("commitment"):
        problems.append("sha256(seed) is not the commitment published at open")
    if entries != sorted(entries):
        problems.append("the entry list is not sorted")
    if not entries:
        if record.get("winner_entry"):
            problems.append("a winner without entries")
        return problems
    winner = entries[draw_index(seed, entries)]
    if winner != record.get("winner_entry"):
        problems.append(f"the formula gives {winner}, the record says {record.get('winner_entry')}")
    return problems


@dataclass
class Giveaway:
    id: str
    broadcast: str
    title: str
    keyword: str | None
    must_watch: bool
    state: str
    commitment: str
    opened_at: int
    entries: int
    drawn_at: int | None = None
    seed: str | None = None  # only once drawn
    winner_entry: str | None = None
    winner_label: str | None = None
    eligible: int | None = None

    def public(self) -> dict[str, Any]:
        return {"giveaway_id": self.id, "title": self.title, "keyword": self.keyword, "must_watch": self.must_watch,
                "state": self.state, "commitment": self.commitment, "opened_at": self.opened_at,
                "entries": self.entries, "drawn_at": self.drawn_at, "seed": self.seed,
                "winner_entry": self.winner_entry, "winner": self.winner_label, "eligible": self.eligible}


_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

_OPEN = _NOW + """
-- KEYS: active, giveaway   ARGV: id, title, keyword, must_watch, seed, commitment, prefix, ttl
local active = redis.call('GET', KEYS[1])
if active and redis.call('HGET', ARGV[7] .. active, 'state') == 'open' then return {'GIVEAWAY_ACTIVE', active} end
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'title', ARGV[2], 'keyword', ARGV[3], 'must_watch', ARGV[4],
           'seed', ARGV[5], 'commitment', ARGV[6], 'state', 'open', 'opened_at', now)
redis.call('EXPIRE', KEYS[2], ARGV[8])
redis.call('SET', KEYS[1], ARGV[1])
return {'OK', now}
"""

_ENTER = """
-- KEYS: giveaway, entries   ARGV: entry, user, ttl
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'GIVEAWAY_NOT_FOUND'} end
local first = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
if st ~= 'open' and first == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return {'GIVEAWAY_CLOSED'}
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {'OK', first, redis.call('HLEN', KEYS[2])}
"""

_CLAIM = """
-- KEYS: giveaway, entries. Freeze the entries (open -> drawing); a retry after a crash gets them again.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'GIVEAWAY_NOT_FOUND'} end
if st == 'drawn' then return {'ALREADY'} end
if st == 'cancelled' then return {'GIVEAWAY_CLOSED'} end
redis.call('HSET', KEYS[1], 'state', 'drawing')
return {'OK', redis.call('HGET', KEYS[1], 'seed'), redis.call('HGETALL', KEYS[2])}
"""

_FINISH = _NOW + """
-- KEYS: giveaway   ARGV: winner_entry, winner_user, winner_label, eligible (JSON list)
if redis.call('HGET', KEYS[1], 'state') ~= 'drawing' then return 'ALREADY' end
redis.call('HSET', KEYS[1], 'state', 'drawn', 'drawn_at', now, 'winner_entry', ARGV[1], 'winner_user', ARGV[2],
           'winner_label', ARGV[3], 'eligible', ARGV[4])
return 'OK'
"""


_CANCEL = """
-- KEYS: giveaway. Only an open giveaway (not one being drawn)
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'cancelled')
return 1
"""

_LEFT = """
-- KEYS: present   ARGV: user
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""


class GiveawayStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._r = redis
        self._open = redis.register_script(_OPEN)
        self._enter = redis.register_script(_ENTER)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._cancel = redis.register_script(_CANCEL)
        self._left = redis.register_script(_LEFT)

    async def open(self, broadcast: str, title: str, keyword: str | None, must_watch: bool) -> Giveaway:
        gid = "g" + uuid.uuid4().hex[:12]
        seed = secrets.token_hex(32)
        res = await self._open(keys=[_k(broadcast, "ga"), _k(broadcast, "ga", gid)],
                               args=[gid, title, keyword or "", int(must_watch), seed, commitment(seed),
                                     _k(broadcast, "ga", ""), TTL_S])
        if res[0] == b"GIVEAWAY_ACTIVE":
            raise DomainError(Code.GIVEAWAY_ACTIVE, "draw or cancel the open giveaway first", giveaway_id=res[1].decode())
        got = await self.get(broadcast, gid)
        assert got is not None
        return got

    async def get(self, broadcast: str, gid: str) -> Giveaway | None:
        raw = await self._r.hgetall(_k(broadcast, "ga", gid))
        if not raw:
            return None
        h = {_s(k): _s(val) for k, val in raw.items()}
        drawn = h["state"] == "drawn"
        return Giveaway(id=h["id"], broadcast=broadcast, title=h["title"], keyword=h["keyword"] or None,
                        must_watch=h["must_watch"] == "1", state="open" if h["state"] == "drawing" else h["state"],
                        commitment=h["commitment"], opened_at=int(h["opened_at"]),
                        entries=int(await self._r.hlen(_k(broadcast, "ga", gid, "entries"))),
                        drawn_at=int(h["drawn_at"]) if h.get("drawn_at") else None,
                        seed=h["seed"] if drawn else None, winner_entry=h.get("winner_entry") or None,
                        winner_label=h.get("winner_label") or None,
                        eligible=len(h["eligible"].split(",")) if h.get("eligible") else (0 if drawn else None))

    async def active(self, broadcast: str) -> Giveaway | None:
        gid = await self._r.get(_k(broadcast, "ga"))
        return await self.get(broadcast, _s(gid)) if gid else None

    async def enter(self, broadcast: str, gid: str, user: str) -> tuple[bool, int]:
        """(entered now?, entries). Entering twice answers (False, n): one entry per user."""
        res = await self._enter(keys=[_k(broadcast, "ga", gid), _k(broadcast, "ga", gid, "entries")],
                                args=[entry_of(gid, user), user, TTL_S])
        code = res[0].decode()
        if code != "OK":
            raise DomainError(Code(code), "the giveaway is closed" if code == "GIVEAWAY_CLOSED" else f"no giveaway {gid!r}")
        return bool(res[1]), int(res[2])

    async def entered(self, broadcast: str, gid: str, user: str) -> bool:
        return bool(await self._r.hexists(_k(broadcast, "ga", gid, "entries"), entry_of(gid, user)))

    async def draw(self, broadcast: str, gid: str, eligible_users: set[str] | None) -> tuple[str, Giveaway]:
        """Freeze the entries, keep the eligible ones (all, or those in `eligible_users`), apply
        the formula and reveal the seed. ('OK' | 'ALREADY', the giveaway)."""
        res = await self._claim(keys=[_k(broadcast, "ga", gid), _k(broadcast, "ga", gid, "entries")])
        code = res[0].decode()
        if code == "ALREADY":
            got = await self.get(broadcast, gid)
            assert got is not None
            return code, got
        if code != "OK":
            raise DomainError(Code(code), "the giveaway is closed" if code == "GIVEAWAY_CLOSED" else f"no giveaway {gid!r}")
        seed, flat = res[1].decode(), res[2]
        users = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
        entries = sorted(e for e, u in users.items() if eligible_users is None or u in eligible_users)
        winner = entries[draw_index(seed, entries)] if entries else ""
        user = users.get(winner, "")
        await self._finish(keys=[_k(broadcast, "ga", gid)], args=[winner, user, "", ",".join(entries)])
        got = await self.get(broadcast, gid)
        assert got is not None
        return "OK", got

    async def set_label(self, broadcast: str, gid: str, label: str) -> None:
        await self._r.hset(_k(broadcast, "ga", gid), "winner_label", label)

    async def winner_user(self, broadcast: str, gid: str) -> str | None:
        raw = await self._r.hget(_k(broadcast, "ga", gid), "winner_user")
        return _s(raw) if raw else None

    async def record(self, broadcast: str, gid: str) -> dict[str, Any] | None:
        """What the verify command needs: the commitment, and once drawn the seed, the sorted
        eligible entries and the winner entry."""
        g = await self.get(broadcast, gid)
        if g is None:
            return None
        out = g.public()
        if g.state == "drawn":
            raw = await self._r.hget(_k(broadcast, "ga", gid), "eligible")
            out["entries"] = _s(raw).split(",") if raw else []
        return out

    async def cancel(self, broadcast: str, gid: str) -> bool:
        return bool(await self._cancel(keys=[_k(broadcast, "ga", gid)]))

    # ---- presence, for "must be watching" -----------------------------------------------------

    async def joined(self, broadcast: str, user: str) -> None:
        await self._r.hincrby(_k(broadcast, "present"), user, 1)

    async def left(self, broadcast: str, user: str) -> None:
        await self._left(keys=[_k(broadcast, "present")], args=[user])

    async def watching(self, broadcast: str) -> set[str]:
        return {_s(u) for u in await self._r.hkeys(_k(broadcast, "present"))}
