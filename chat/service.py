"""The chat API: send, moderate, read history. Async, Redis-backed, knows nothing of sockets.

Order of checks for `send` (the first failing one answers):
  local, no Redis:  VALIDATION (bad kind), EMPTY, TOO_LONG, BLOCKED_WORD, LINK_NOT_ALLOWED
  one Lua script:   BANNED, MUTED, SLOW_MODE, RATE_LIMITED, DUPLICATE, then the append.
Host and moderators skip ban/time-out, slow mode, duplicate suppression and the link policy; they keep
the word filter and get a rate limit `staff_factor` times larger."""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from chat.commentbuy import BuyIntent, parse_buy
from chat.errors import BLOCKED_WORD, FORBIDDEN, LINK_NOT_ALLOWED, NOT_A_QUESTION, NOT_FOUND, VALIDATION, ChatRefused
from chat.fold import nfkc_lower
from chat.keys import ChatKeys
from chat.links import LinkPolicy
from chat.message import Actor, Message
from chat.policy import ChatPolicy
from chat.reactions import decode_totals
from chat.text import clean
from chat.words import WordFilter
from domain import Code
from domain.validate import ID_RULE, is_id
from redislayer import AutoPipeline, Script

_NOT_WORD = re.compile(r"[\W_]+")
_REPEATS = re.compile(r"(\D)\1+")  # repeated letters fold; numbers ("11" vs "1") stay apart
_COOL_CODES = ("RATE_LIMITED",)
_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_REFUSAL_TEXT = {
    "BANNED": "you are banned from this chat",
    "MUTED": "you are timed out",
    "SLOW_MODE": "slow mode is on: wait before sending again",
    "RATE_LIMITED": "you are sending messages too fast",
    "DUPLICATE": "you just sent that",
}


def _lua(name: str) -> str:
    return resources.files("chat.lua").joinpath(name).read_text(encoding="utf-8")


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def fingerprint(text: str) -> str:
    """What counts as "the same message" for duplicate suppression: letters and digits only, case and
    repeats folded ("Hello!!", "h e l l o", "HELLOOO" are one), or the spaceless text when it has none."""
    folded = nfkc_lower(text)
    core = _REPEATS.sub(r"\1", _NOT_WORD.sub("", folded)) or folded.replace(" ", "")
    return hashlib.blake2b(core.encode(), digest_size=8).hexdigest()


def message_id(value: object) -> str:
    """A well-formed stream id or VALIDATION."""
    if not isinstance(value, str) or not _ID.match(value):
        raise ChatRefused(VALIDATION, "message_id must be a message id such as 1700000000000-0")
    return value


@dataclass(frozen=True, slots=True)
class Sent:
    """An accepted message, and the order it places when comment-to-buy is on and it is one."""

    message: Message
    order: BuyIntent | None = None
    again: bool = False  # a retried request id: this is the first answer, nothing was posted


@dataclass(frozen=True, slots=True)
class Removal:
    broadcast: str
    message_id: str
    by: str
    at: int
    fresh: bool  # False when it had been removed already


@dataclass
class ChatState:
    slow_mode_s: int = 0
    comment_buy: bool = False
    pinned: Message | None = None
    reactions: dict[str, int] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {"slow_mode": self.slow_mode_s, "comment_buy": self.comment_buy,
                "pinned": self.pinned.to_wire() if self.pinned else None, "reactions": self.reactions}


class Chat:
    """One object per process, shared by every broadcast."""

    def __init__(self, redis: Any, policy: ChatPolicy | None = None) -> None:
        self.redis = redis
        self.policy = policy or ChatPolicy()
        self.words = WordFilter(self.policy.blocked_words, self.policy.allowed_words)
        self.links = LinkPolicy(self.policy.link_mode, self.policy.allowed_domains)
        self._pipe = AutoPipeline(redis)
        self._cooldown: dict[tuple[str, str], tuple[float, str]] = {}  # (broadcast, user) -> (until, code)
        self._send = Script("send", _lua("send.lua"))
        self._remove = redis.register_script(_lua("remove.lua"))
        self._mute = redis.register_script(_lua("mute.lua"))
        self._mark = redis.register_script(_lua("mark.lua"))

    # --- sending -----------------------------------------------------------------------------

    def check_text(self, actor: Actor, text: object) -> str:
        """The local checks (no Redis): returns the cleaned text or raises ChatRefused."""
        out = clean(text, self.policy.max_len)
        word = self.words.find(out)
        if word is not None:
            raise ChatRefused(BLOCKED_WORD, "the message contains a blocked word")
        if not actor.is_staff:
            domain = self.links.offending(out)
            if domain is not None:
                raise ChatRefused(LINK_NOT_ALLOWED, "links are not allowed here", domain=domain)
        return out

    async def send(self, broadcast: str, actor: Actor, text: object, kind: str = "chat",
                   request_id: str | None = None) -> Sent:
        """Validate, moderate, rate-limit and append one message (one Redis round trip).

        With a `request_id`, a retry within `request_ttl_s` returns the first message (`again=True`)
        instead of posting it twice; the checks are not run again."""
        if kind not in ("chat", "question"):
            raise ChatRefused(VALIDATION, "kind must be chat or question")
        if request_id is not None and not is_id(request_id):  # the one id rule (domain/validate.py)
            raise ChatRefused(VALIDATION, f"request_id must be {ID_RULE}", field="request_id")
        body = self.check_text(actor, text)
        if request_id is None:
            self._cooling(broadcast, actor.user)
        p = self.policy
        order = parse_buy(body, p.buy_max_qty) if kind == "chat" else None
        staff = actor.is_staff
        factor = p.staff_factor if staff else 1.0
        # Orders are exempt from duplicate suppression: "buy" twice may be two orders.
        window = 0 if (staff or order is not None) else p.dup_window_s * 1000
        k = ChatKeys(broadcast)
        res = await self._pipe.call(
            self._send,
            [k.bans, k.mutes, k.cfg, k.user(actor.user), k.dups(actor.user), k.stream, k.questions,
                  k.request(actor.user, request_id or "")],
            [actor.user, "1" if staff else "0", p.rate_per_s * factor, max(1, int(p.burst * factor)),
                  window, fingerprint(body) if window else "", p.history_cap, actor.name, actor.role, body, kind,
                  p.questions_cap, p.request_ttl_s * 1000 if request_id else 0],
        )
        status = _s(res[0])
        if status == "AGAIN":
            first = await self.get(broadcast, _s(res[1]))
            if first is None:  # trimmed away since: answer with what we know
                first = Message(id=_s(res[1]), user=actor.user, name=actor.name, role=actor.role, text=body,
                                ts=int(_s(res[1]).partition("-")[0]), kind=kind)
            again = parse_buy(first.text, p.buy_max_qty) if first.kind == "chat" else None
            return Sent(first, again if _s(res[2]) == "1" else None, again=True)
        if status != "OK":
            wait = int(res[1])
            if status in _COOL_CODES:
                self._cool(broadcast, actor.user, status, wait)
            raise ChatRefused(Code(status), _REFUSAL_TEXT.get(status, status),
                              retry_after=wait if status != "BANNED" else None)
        mid = _s(res[1])
        msg = Message(id=mid, user=actor.user, name=actor.name, role=actor.role, text=body,
                      ts=int(mid.partition("-")[0]), kind=kind)
        return Sent(msg, order if _s(res[2]) == "1" else None)

    async def post_system(self, broadcast: str, text: str) -> Message:
        """A server notice in the chat ("the sale is open"); no checks."""
        body = clean(text, max(self.policy.max_len, len(text)))
        mid = _s(await self.redis.xadd(ChatKeys(broadcast).stream,
                                       {"u": "", "n": "Hawker", "r": "system", "t": body, "k": "system"},
                                       maxlen=self.policy.history_cap, approximate=True))
        return Message(id=mid, user="", name="Hawker", role="system", text=body, ts=int(mid.partition("-")[0]),
                       kind="system")

    # --- the local cool-down: a flooder's refusals cost no Redis round trip -----------------

    def _cool(self, broadcast: str, user: str, code: str, wait_ms: int) -> None:
        """Remember a RATE_LIMITED refusal on this node for its `retry_after`. That is exact: tokens
        only come back with time and other nodes can only take more. (Slow mode and time-outs are
        not cached: a host may lift them at any moment.) A send with a request_id skips the cache,
        so a retry still gets its first answer."""
        keep = wait_ms
        if keep <= 5:
            return
        if len(self._cooldown) >= 100_000:
            now = time.monotonic()
            self._cooldown = {k: v for k, v in self._cooldown.items() if v[0] > now}
        self._cooldown[(broadcast, user)] = (time.monotonic() + (keep - 5) / 1000, code)

    def _cooling(self, broadcast: str, user: str) -> None:
        hit = self._cooldown.get((broadcast, user))
        if hit is None:
            return
        left = hit[0] - time.monotonic()
        if left <= 0:
            del self._cooldown[(broadcast, user)]
            return
        raise ChatRefused(Code(hit[1]), _REFUSAL_TEXT[hit[1]], retry_after=max(1, int(left * 1000) + 5))

    # --- moderation --------------------------------------------------------------------------

    @staticmethod
    def _staff(actor: Actor) -> None:
        if not actor.is_staff:
            raise ChatRefused(FORBIDDEN, "only the host or a moderator may do this")

    @staticmethod
    def _target(actor: Actor, user: object) -> str:
        if not isinstance(user, str) or not user or len(user) > 200:
            raise ChatRefused(VALIDATION, "user must be a user id")
        if user == actor.user:
            raise ChatRefused(VALIDATION, "you cannot do this to yourself")
        return user

    async def delete(self, broadcast: str, actor: Actor, mid: object) -> Removal:
        """Hide a message from viewers (kept, flagged, for staff and the replay); unpins it."""
        self._staff(actor)
        mid = message_id(mid)
        k = ChatKeys(broadcast)
        res = await self._remove(keys=[k.stream, k.removed, k.cfg], args=[mid, actor.user])
        if int(res[0]) < 0:
            raise ChatRefused(NOT_FOUND, "no such message")
        return Removal(broadcast, mid, actor.user, int(res[0]), bool(int(res[1])))

    async def timeout(self, broadcast: str, actor: Actor, user: object, seconds: object) -> int:
        """Mute a user for `seconds` (0 lifts it); returns the server time it ends (0 when lifted)."""
        self._staff(actor)
        target = self._target(actor, user)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= self.policy.timeout_max_s:
            raise ChatRefused(VALIDATION, f"seconds must be an integer from 0 to {self.policy.timeout_max_s}")
        return int(await self._mute(keys=[ChatKeys(broadcast).mutes], args=[target, seconds]))

    async def ban(self, broadcast: str, actor: Actor, user: object) -> None:
        """Ban for the whole broadcast (kept in Redis: survives reconnects and other nodes)."""
        self._staff(actor)
        await self.redis.hset(ChatKeys(broadcast).bans, self._target(actor, user), actor.user)

    async def unban(self, broadcast: str, actor: Actor, user: object) -> bool:
        self._staff(actor)
        return bool(await self.redis.hdel(ChatKeys(broadcast).bans, self._target(actor, user)))

    async def is_banned(self, broadcast: str, user: str) -> bool:
        return bool(await self.redis.hexists(ChatKeys(broadcast).bans, user))

    async def bans(self, broadcast: str) -> dict[str, str]:
        """user -> who banned them."""
        raw = await self.redis.hgetall(ChatKeys(broadcast).bans)
        return {_s(k): _s(v) for k, v in raw.items()}

    async def set_slow_mode(self, broadcast: str, actor: Actor, seconds: object) -> int:
        self._staff(actor)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= self.policy.slow_max_s:
            raise ChatRefused(VALIDATION, f"seconds must be an integer from 0 to {self.policy.slow_max_s}")
        await self.redis.hset(ChatKeys(broadcast).cfg, "slow", seconds)
        return seconds

    async def set_comment_buy(self, broadcast: str, actor: Actor, enabled: object) -> bool:
        if actor.role != "host":
            raise ChatRefused(FORBIDDEN, "only the host may turn comment-to-buy on or off")
        if not isinstance(enabled, bool):
            raise ChatRefused(VALIDATION, "enabled must be true or false")
        await self.redis.hset(ChatKeys(broadcast).cfg, "buy", "1" if enabled else "0")
        return enabled

    async def pin(self, broadcast: str, actor: Actor, mid: object) -> Message:
        """Pin a message or question (one pin per broadcast; a new pin replaces the old)."""
        self._staff(actor)
        mid = message_id(mid)
        k = ChatKeys(broadcast)
        res = await self._mark(keys=[k.stream, k.removed, k.cfg], args=[mid, "pin", ""])
        return self._marked(mid, res)

    async def unpin(self, broadcast: str, actor: Actor) -> None:
        self._staff(actor)
        await self.redis.hdel(ChatKeys(broadcast).cfg, "pin")

    async def answer(self, broadcast: str, actor: Actor, mid: object) -> Message:
        """Mark a question answered (idempotent)."""
        self._staff(actor)
        mid = message_id(mid)
        k = ChatKeys(broadcast)
        res = await self._mark(keys=[k.stream, k.removed, k.answered], args=[mid, "", "question"])
        return self._marked(mid, res, answered=True)

    @staticmethod
    def _marked(mid: str, res: list[Any], answered: bool = False) -> Message:
        code = int(res[0])
        if code == -1 or code == -3:
            raise ChatRefused(NOT_FOUND, "no such message")
        if code == -2:
            raise ChatRefused(NOT_A_QUESTION, "that message is not a question")
        flat = res[1:]
        msg = Message.from_entry(mid, dict(zip(flat[0::2], flat[1::2])))
        if answered:
            msg = _replace(msg, answered=True)
        return msg

    # --- reading -----------------------------------------------------------------------------

    async def _flags(self, k: ChatKeys, entries: list[Any]) -> list[Message]:
        ids = [e[0] for e in entries]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(k.removed, ids)
        pipe.hmget(k.answered, ids)
        removed, answered = await pipe.execute()
        out = []
        for (eid, fields), rem, ans in zip(entries, removed, answered):
            msg = Message.from_entry(eid, fields)
            if rem is not None or ans is not None:
                msg = _replace(msg, removed=rem is not None, answered=ans is not None)
            out.append(msg)
        return out

    async def recent(self, broadcast: str, n: int | None = None, staff: bool = False) -> list[Message]:
        """The last `n` messages, oldest first. Viewers get no removed ones; staff get them flagged."""
        n = n or self.policy.join_history
        k = ChatKeys(broadcast)
        out: list[Message] = []
        top = "+"
        for _ in range(10):
            entries = await self.redis.xrevrange(k.stream, max=top, min="-", count=n)
            if not entries:
                break
            for msg in await self._flags(k, entries):
                if staff or not msg.removed:
                    out.append(msg)
            if len(out) >= n or len(entries) < n:
                break
            top = "(" + _s(entries[-1][0])
        out = out[:n]
        out.reverse()
        return out

    async def history(self, broadcast: str, since_ms: int = 0, until_ms: int | None = None,
                      count: int = 500, staff: bool = False) -> list[Message]:
        """Messages accepted in [since_ms, until_ms], oldest first: the replay timeline."""
        k = ChatKeys(broadcast)
        entries = await self.redis.xrange(k.stream, min=str(max(0, int(since_ms))),
                                          max="+" if until_ms is None else str(int(until_ms)),
                                          count=max(1, min(int(count), 5000)))
        if not entries:
            return []
        return [m for m in await self._flags(k, entries) if staff or not m.removed]

    async def get(self, broadcast: str, mid: str) -> Message | None:
        k = ChatKeys(broadcast)
        entries = await self.redis.xrange(k.stream, min=message_id(mid), max=mid, count=1)
        return (await self._flags(k, entries))[0] if entries else None

    async def questions(self, broadcast: str, staff: bool = False, limit: int = 100) -> list[Message]:
        """Recent questions, newest first, with their answered flag."""
        k = ChatKeys(broadcast)
        ids = await self.redis.zrevrange(k.questions, 0, max(0, limit - 1))
        pipe = self.redis.pipeline(transaction=False)
        for i in ids:
            pipe.xrange(k.stream, min=i, max=i, count=1)
        found = [r[0] for r in await pipe.execute() if r] if ids else []
        if not found:
            return []
        return [m for m in await self._flags(k, found) if staff or not m.removed]

    async def state(self, broadcast: str) -> ChatState:
        k = ChatKeys(broadcast)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(k.cfg, ["slow", "buy", "pin"])
        pipe.hgetall(k.reactions)
        (slow, buy, pin), reactions = await pipe.execute()
        pinned = await self.get(broadcast, _s(pin)) if pin else None
        return ChatState(slow_mode_s=int(slow or 0), comment_buy=_s(buy or b"0") == "1", pinned=pinned,
                         reactions=decode_totals(reactions))

    async def snapshot(self, broadcast: str, staff: bool = False, n: int | None = None) -> dict[str, Any]:
        """What a joining client gets: the last messages and the chat state."""
        msgs = await self.recent(broadcast, n, staff=staff)
        state = await self.state(broadcast)
        out = state.to_wire()
        out["messages"] = [m.to_wire() for m in msgs]
        return out

    async def close(self, broadcast: str) -> None:
        """The broadcast ended: keep its chat `retention_s` more seconds for the replay, then drop it."""
        pipe = self.redis.pipeline(transaction=False)
        for key in ChatKeys(broadcast).all_fixed():
            pipe.expire(key, self.policy.retention_s)
        await pipe.execute()


def _replace(msg: Message, **changes: Any) -> Message:
    from dataclasses import replace

    return replace(msg, **changes)
