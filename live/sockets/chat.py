"""Chat in the hub: the `chat.*`, `qa.*` and `react` events, the `chat` / `chat_state` snapshot
parts, reaction totals per tick, and comment-to-buy through the hub's sale/reserve path.

`register(node)` is called once from create_app after the node is built. Everything chat
decides lives in the `chat` package; this module only turns events into calls and results into
acks and fan-out:
  * an accepted message -> `fanout.chat(broadcast, message)` (coalesced into the tick's batch);
  * removal / pin / unpin / slow mode / comment-to-buy / answered -> urgent events at once;
  * time-out and ban -> a private event to that user (`fanout.to_user`);
  * reactions -> counted on this node, once per tick added to the Redis totals, which go out as
    the level `reactions` (latest value wins); hearts also feed the tick's `hearts` sum.
Overload sampling (viewers get at most K chat lines per tick past a rate) is the fan-out engine's:
this module hands it the chat policy's `chat.overload.ChatSampler`."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from chat import Actor, Chat, ChatPolicy, ReactionTally, Sent
from chat.overload import ChatSampler, OverloadPolicy
from chat.words import load_list
from domain import Code, DomainError
from domain import validate as v
from live.config import Config
from live.hub.hub import Hub
from live.hub.registry import EVERYONE, HOST, STAFF, Caller
from live.periodic import Periodic
from live.sockets.sales import Sales, levels_dict, reservation_dict

if TYPE_CHECKING:
    from live.node import Node

log = logging.getLogger("hawker.chat")

CHAT_ORDERS = Counter("hawker_chat_orders_total", "Comment-to-buy orders, by result code (OK or the refusal)", ["code"])
CHAT_REACTIONS = Counter("hawker_chat_reactions_total", "Reactions counted, by emoji name", ["emoji"])
# Sent / refused chat messages are counted by the hub: hawker_hub_commands_total{event="chat.send", code}.

Listener = Callable[[Caller, str], Awaitable[None]]

ORDER_PREFIX = "chat:"  # inventory request_id of a comment-to-buy order: "chat:<message id>"


def policy_from_config(config: Config) -> ChatPolicy:
    """The HAWKER_CHAT_* settings as a ChatPolicy."""
    lists = [n.strip() for n in config.chat_word_lists.split(",") if n.strip()]
    words: tuple[str, ...] = ()
    for name in lists:
        words += load_list(name)
    words += tuple(w.strip() for w in config.chat_blocked_words.split(",") if w.strip())
    return ChatPolicy(
        max_len=config.chat_max_len,
        rate_per_s=config.chat_rate,
        burst=config.chat_burst,
        dup_window_s=config.chat_dup_window_s,
        link_mode=config.chat_link_mode,
        allowed_domains=tuple(d.strip() for d in config.chat_allowed_domains.split(",") if d.strip()),
        blocked_words=words,
        history_cap=config.chat_history_cap,
        join_history=config.chat_join_history,
        retention_s=config.chat_retention_s,
        overload_rate=config.chat_overload_rate,
        overload_k=config.chat_overload_k,
    )


_only = v.only  # unknown fields are refused as at every door (domain/validate.py)


class ChatEvents:
    """The chat part of one node."""

    def __init__(self, hub: Hub, chat: Chat, sales: Sales, *, tick_ms: int = 100) -> None:
        self.hub = hub
        self.fanout = hub.fanout
        self.chat = chat
        self.sales = sales
        self.tally = ReactionTally(chat.policy.react_per_s)
        self.sampler = ChatSampler(OverloadPolicy(chat.policy.overload_rate, chat.policy.overload_k))
        self.tick_s = max(0.01, tick_ms / 1000)
        self._flush = Periodic(self.flush_reactions, self.tick_s, name="chat-reactions", log=log, first_delay=True)
        self.listeners: list[Listener] = []  # for each accepted message (giveaway keywords)

    @classmethod
    def of(cls, config: Config, hub: Hub, sales: Sales) -> ChatEvents:
        """The node's Chat (HAWKER_CHAT_* settings) and its events."""
        return cls(hub, Chat(hub.redis, policy_from_config(config)), sales, tick_ms=config.tick_ms)

    @staticmethod
    def actor(caller: Caller) -> Actor:
        return Actor(caller.user, caller.name, caller.role)

    # ---- sending -------------------------------------------------------------------------------

    async def send(self, caller: Caller, payload: dict) -> dict:
        _only(payload, {"text", "kind", "request_id"})
        kind = payload.get("kind", "chat")
        sent = await self.chat.send(caller.broadcast, self.actor(caller), payload.get("text"),
                                    kind=kind if isinstance(kind, str) else "", request_id=payload.get("request_id"))
        wire = sent.message.to_wire()
        if not sent.again:
            for listener in self.listeners:  # e.g. a giveaway's chat keyword (live/sockets/giveaways.py)
                try:
                    await listener(caller, sent.message.text)
                except Exception:  # noqa: BLE001 - a listener never costs the sender their message
                    log.warning("chat listener failed", exc_info=True)
            self.fanout.chat(caller.broadcast, wire)
        out: dict[str, Any] = {"message": wire}
        if sent.again:
            out["again"] = True
        if sent.order is not None:
            out["order"] = await self.order(caller, sent)
        return out

    async def order(self, caller: Caller, sent: Sent) -> dict[str, Any]:
        """Comment-to-buy: a hold through the sale's one reserve path (`Sales.hold`), at most once
        per message (the inventory request id is derived from the message id, so a retry gets the
        first answer)."""
        assert sent.order is not None
        sale = await self.sales.open_sale(caller.broadcast)
        if sale is None:
            CHAT_ORDERS.labels("NO_OPEN_SALE").inc()
            return {"ok": False, "qty": sent.order.qty,
                    "error": DomainError(Code.NO_OPEN_SALE, "no sale is open right now").body()}
        res = await self.sales.hold(caller, sale.id, sent.order.qty, ORDER_PREFIX + sent.message.id)
        answer: dict[str, Any] = {"ok": res.ok, "sale_id": sale.id, "qty": sent.order.qty,
                                  "levels": levels_dict(res.levels)}
        if res.ok:
            answer["reservation"] = reservation_dict(res.reservation)
            CHAT_ORDERS.labels("OK").inc()
        else:
            refused = DomainError(Code(res.code.value) if res.code else Code.INTERNAL, res.message)  # always has a code
            answer["error"] = refused.body()
            CHAT_ORDERS.labels(refused.code).inc()
        return answer

    # ---- moderation ----------------------------------------------------------------------------

    async def delete(self, caller: Caller, payload: dict) -> dict:
        _only(payload, {"message_id"})
        removal = await self.chat.delete(caller.broadcast, self.actor(caller), payload.get("message_id"))
        self.fanout.urgent(caller.broadcast, "chat.removed",
                           {"id": removal.message_id, "by": removal.by, "at": removal.at})
        return {"id": removal.message_id, "at": removal.at}

    async def timeout(self, caller: Caller, payload: dict) -> dict:
        _only(payload, {"user", "seconds"})
        user = payload.get("user")
        until = await self.chat.timeout(caller.broadcast, self.actor(caller), user, payload.get("seconds"))
        self.fanout.to_user(caller.broadcast, str(user), "chat.timeout", {"until": until, "by": caller.user})
        return {"user": user, "until": until}

    async def ban(self, caller: Caller, payload: dict) -> dict:
        _only(payload, {"user"})
        user = payload.get("user")
        await self.chat.ban(caller.broadcast, self.actor(caller), user)
        self.fanout.to_user(caller.broadcast, str(user), "chat.banned", {"by": caller.user})
        return {"user": user, "banned": True}

    async def unban(self, caller: Caller, payload: dict) -> dict:
        _only(payload, {"user"})
        user = payload.get("user")
        was = await self.chat.unban(caller.broadcast, self.actor(caller), user)
        if was:
            self.fanout.to_user(caller.broadcast, str(user), "chat.unbanned", {"by": caller.user})
        return {"user": user, "banned": False}

    async def slowmode(self, caller: Caller, payload: dict) -> dict:
        _only(payload, {"seconds"})
        seconds = await self.chat.set_slow_mode(caller.broadcast, self.actor(caller), payload.get("seconds"))
        self.fanout.urgent(caller.broadcast, "chat.slowmode", {"seconds": seconds})
        return {"seconds": seconds}

    async def pin(self, caller: Caller, payload: dict) -> dict:
        _only(payload, {"message_id"})
        msg = await self.chat.pin(caller.broadcast, self.actor(caller), payload.get("message_id"))
        self.fanout.urgent(caller.broadcast, "chat.pinned", {"message": msg.to_wire(), "by": caller.user})
        return {"message": msg.to_wire()}

    async def unpin(self, caller: Caller, payload: dict) -> dict:
        _only(payload, set())
        await self.chat.unpin(caller.broadcast, self.actor(caller))
        self.fanout.urgent(caller.broadcast, "chat.pinned", {"message": None, "by": caller.user})
        return {}

    async def commentbuy(self, caller: Caller, payload: dict) -> dict:
        _only(payload, {"enabled"})
        enabled = await self.chat.set_comment_buy(caller.broadcast, self.actor(caller), payload.get("enabled"))
        self.fanout.urgent(caller.broadcast, "chat.commentbuy", {"enabled": enabled})
        return {"enabled": enabled}

    # ---- Q&A, history, reactions ---------------------------------------------------------------

    async def answer(self, caller: Caller, payload: dict) -> dict:
        _only(payload, {"message_id"})
        msg = await self.chat.answer(caller.broadcast, self.actor(caller), payload.get("message_id"))
        self.fanout.urgent(caller.broadcast, "qa.answered", {"id": msg.id, "by": caller.user})
        return {"message": msg.to_wire()}

    async def questions(self, caller: Caller, payload: dict) -> dict:
        _only(payload, set())
        qs = await self.chat.questions(caller.broadcast, staff=caller.is_staff)
        return {"questions": [m.to_wire() for m in qs]}

    async def history(self, caller: Caller, payload: dict) -> dict:
        """The replay timeline: messages accepted in [since, until] (server ms), oldest first."""
        _only(payload, {"since", "until", "count"})
        since, until, count = payload.get("since") or 0, payload.get("until"), payload.get("count") or 200
        for name, value in (("since", since), ("until", until), ("count", count)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise DomainError(Code.VALIDATION, f"{name} must be a non-negative integer", field=name)
        msgs = await self.chat.history(caller.broadcast, since, until, min(count or 200, 1000), staff=caller.is_staff)
        return {"messages": [m.to_wire() for m in msgs]}

    async def react(self, caller: Caller, payload: dict) -> dict:
        _only(payload, {"emoji"})
        name = self.tally.add(caller.broadcast, caller.user, payload.get("emoji"), self.hub.clock.now_ms())
        CHAT_REACTIONS.labels(name).inc()
        if name == "heart":
            self.fanout.hearts(caller.broadcast, 1)
        return {"emoji": name}

    async def flush_reactions(self) -> None:
        """Once per tick: this node's reaction counts into the Redis totals, out as level `reactions`."""
        for bc in self.tally.pending():
            try:
                totals = await self.tally.flush(self.chat.redis, bc)
            except Exception:  # noqa: BLE001 - a lost tick of reactions is not worth a crash
                log.warning("reaction flush failed", exc_info=True)
                continue
            if totals is not None:
                self.fanout.level(bc, "reactions", totals)

    async def start(self) -> None:
        self._flush.start()

    async def stop(self) -> None:
        await self._flush.stop()

    # ---- snapshot ------------------------------------------------------------------------------

    async def snapshot_messages(self, caller: Caller) -> list[dict[str, Any]]:
        msgs = await self.chat.recent(caller.broadcast, staff=caller.is_staff)
        return [m.to_wire() for m in msgs]

    async def snapshot_state(self, caller: Caller) -> dict[str, Any]:
        async def fetch() -> dict[str, Any]:
            return (await self.chat.state(caller.broadcast)).to_wire()

        state = dict(await self.hub.shared(("chat_state", caller.broadcast), fetch))  # one read per join burst
        state["banned"] = (not caller.is_staff) and await self.chat.is_banned(caller.broadcast, caller.user)
        return state


def register(node: Node) -> None:
    """Plug the chat events into the hub."""
    part, hub = node.chat, node.hub
    cmd = hub.command
    cmd("chat.send", roles=EVERYONE, max_bytes=8 * 1024)(part.send)
    cmd("chat.delete", roles=STAFF)(part.delete)
    cmd("chat.timeout", roles=STAFF)(part.timeout)
    cmd("chat.ban", roles=STAFF)(part.ban)
    cmd("chat.unban", roles=STAFF)(part.unban)
    cmd("chat.slowmode", roles=STAFF)(part.slowmode)
    cmd("chat.pin", roles=STAFF)(part.pin)
    cmd("chat.unpin", roles=STAFF)(part.unpin)
    cmd("chat.commentbuy", roles=HOST)(part.commentbuy)
    cmd("chat.history", roles=EVERYONE, cost=5)(part.history)
    cmd("qa.answer", roles=STAFF)(part.answer)
    cmd("qa.list", roles=EVERYONE, cost=2)(part.questions)
    cmd("react", roles=EVERYONE, cost=0.25)(part.react)
    hub.snapshot_part("chat")(part.snapshot_messages)
    hub.snapshot_part("chat_state")(part.snapshot_state)
    hub.on_broadcast_end(part.chat.close)
    node.fanout.set_chat_sampler(part.sampler)
