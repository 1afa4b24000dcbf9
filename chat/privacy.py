"""One person's chat data, for an export or an erasure (GDPR / Korea PIPA).

Chat history is one capped stream per broadcast (`chat:{<bc>}:msgs`, entries u n r t k), so a
user's messages are found by reading the streams of the broadcasts the caller names, in chunks.
Erasing deletes those entries (and their Q&A, removal and answered marks) and the user's rate,
duplicate and request records. Bans and time-outs stay: they are the moderators' record of abuse,
kept on the legitimate-interest ground, and they hold only the id."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chat.keys import ChatKeys
from chat.message import Message

CHUNK = 1000


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _glob(s: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in s)


async def _messages(redis: Any, broadcast: str, user: str) -> list[Message]:
    k = ChatKeys(broadcast)
    out: list[Message] = []
    start = "-"
    while True:
        entries = await redis.xrange(k.stream, min=start, max="+", count=CHUNK)
        for eid, fields in entries:
            if _s(fields.get(b"u", fields.get("u", ""))) == user:
                out.append(Message.from_entry(eid, fields))
        if len(entries) < CHUNK:
            return out
        start = "(" + _s(entries[-1][0])


async def messages_of(redis: Any, broadcasts: Iterable[str], user: str) -> dict[str, list[Message]]:
    """The user's messages still in history, per broadcast (broadcasts without any are left out)."""
    found: dict[str, list[Message]] = {}
    for bc in dict.fromkeys(broadcasts):
        try:
            msgs = await _messages(redis, bc, user)
        except ValueError:  # not a valid broadcast id for chat keys
            continue
        if msgs:
            found[bc] = msgs
    return found


async def erase_user(redis: Any, broadcasts: Iterable[str], user: str) -> dict[str, int]:
    """Delete the user's messages and per-user chat records in these broadcasts; returns how many
    messages went, per broadcast."""
    erased: dict[str, int] = {}
    for bc, msgs in (await messages_of(redis, broadcasts, user)).items():
        k = ChatKeys(bc)
        ids = [m.id for m in msgs]
        for i in range(0, len(ids), CHUNK):
            part = ids[i:i + CHUNK]
            await redis.xdel(k.stream, *part)
            await redis.zrem(k.questions, *part)
            await redis.hdel(k.removed, *part)
            await redis.hdel(k.answered, *part)
        erased[bc] = len(ids)
    for bc in dict.fromkeys(broadcasts):
        try:
            k = ChatKeys(bc)
        except ValueError:
            continue
        await redis.delete(k.user(user), k.dups(user))
        async for key in redis.scan_iter(match=_glob(k.base + "r:" + user + ":") + "*", count=1000):
            await redis.delete(key)
    return erased
