"""Giveaway commands: open / draw / cancel (staff), enter (viewers, by button or by the chat
keyword), the snapshot part and the `giveaway:<id>` level; the record anyone can verify is
live/rest/giveaways.py. The draw is in shop/giveaways.py."""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from domain import Code, DomainError
from domain import validate as v
from live.hub.hub import Hub
from live.hub.registry import STAFF, Caller
from shop.giveaways import GiveawayStore, entry_of
from shop.names import mask

if TYPE_CHECKING:
    from live.node import Node

log = logging.getLogger("hawker.hub.giveaways")

ENTRANTS = ("viewer",)  # the show's staff do not enter their own giveaways
_KEYWORD = re.compile(r"^[^\s]{1,30}$")


def level_key(giveaway_id: str) -> str:
    return f"giveaway:{giveaway_id}"


class Giveaways:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store = GiveawayStore(hub.redis)
        self._keywords: dict[str, tuple[str, str]] = {}  # broadcast -> (giveaway id, keyword), this node's cache

    async def open(self, caller: Caller, payload: dict) -> dict[str, Any]:
        v.only(payload, {"title", "keyword", "must_watch"})
        title = v.text(payload, "title", max_len=100)
        keyword = v.text(payload, "keyword", required=False, max_len=30)
        if keyword is not None and not _KEYWORD.match(keyword):
            raise v.Invalid("keyword", "keyword must be one word of 1-30 characters")
        must_watch = payload.get("must_watch", False)
        if not isinstance(must_watch, bool):
            raise v.Invalid("must_watch", "must_watch must be true or false")
        bc = await self.hub.broadcasts.require(caller.broadcast)
        if bc.state == "ended":
            raise DomainError(Code.BAD_STATE, "the broadcast has ended", state="ended")
        assert title is not None
        g = await self.store.open(caller.broadcast, title, keyword, must_watch)
        if keyword:
            self._keywords[caller.broadcast] = (g.id, keyword.casefold())
        self.hub.fanout.urgent(caller.broadcast, "giveaway.opened", g.public())
        return {"giveaway": g.public()}

    async def _enter(self, caller: Caller, gid: str) -> dict[str, Any]:
        entered, count = await self.store.enter(caller.broadcast, gid, caller.user)
        if entered:
            self.hub.fanout.level(caller.broadcast, level_key(gid), {"giveaway_id": gid, "entries": count, "v": count})
        return {"giveaway_id": gid, "entry": entry_of(gid, caller.user), "entered": entered, "entries": count}

    async def enter(self, caller: Caller, payload: dict) -> dict[str, Any]:
        """One entry per user: a second press answers `entered: false` with the same entry."""
        v.only(payload, {"giveaway_id"})
        gid = v.ident(payload, "giveaway_id")
        assert gid is not None
        return await self._enter(caller, gid)

    async def on_chat(self, caller: Caller, text: str) -> None:
        """A viewer's chat message with the open giveaway's keyword enters them (as the button)."""
        if caller.role not in ENTRANTS:
            return
        known = self._keywords.get(caller.broadcast)
        if known is None:
            g = await self.store.active(caller.broadcast)
            known = (g.id, g.keyword.casefold()) if g and g.state == "open" and g.keyword else ("", "")
            self._keywords[caller.broadcast] = known
        gid, word = known
        if not gid or word not in text.casefold().split():
            return
        try:
            out = await self._enter(caller, gid)
        except DomainError:
            self._keywords.pop(caller.broadcast, None)  # closed meanwhile: look again next time
            return
        if out["entered"]:
            self.hub.fanout.to_user(caller.broadcast, caller.user, "giveaway.entered", out)

    async def draw(self, caller: Caller, payload: dict) -> dict[str, Any]:
        v.only(payload, {"giveaway_id"})
        gid = v.ident(payload, "giveaway_id")
        assert gid is not None
        g = await self.store.get(caller.broadcast, gid)
        if g is None:
            raise DomainError(Code.GIVEAWAY_NOT_FOUND, f"no giveaway {gid!r}")
        eligible = await self.store.watching(caller.broadcast) if g.must_watch else None
        code, g = await self.store.draw(caller.broadcast, gid, eligible)
        self._keywords.pop(caller.broadcast, None)
        if code == "OK":
            winner = await self.store.winner_user(caller.broadcast, gid)
            if winner:
                label = mask(await self._name_of(caller.broadcast, winner))
                await self.store.set_label(caller.broadcast, gid, label)
                g.winner_label = label
                self.hub.fanout.to_user(caller.broadcast, winner, "giveaway.won", g.public())
            self.hub.fanout.urgent(caller.broadcast, "giveaway.drawn", g.public())
        return {"giveaway": g.public()}

    async def _name_of(self, broadcast: str, user: str) -> str:
        for c in self.hub.callers(broadcast):
            if c.user == user:
                return c.name or user
        return user

    async def cancel(self, caller: Caller, payload: dict) -> dict[str, Any]:
        v.only(payload, {"giveaway_id"})
        gid = v.ident(payload, "giveaway_id")
        assert gid is not None
        if not await self.store.cancel(caller.broadcast, gid):
            raise DomainError(Code.GIVEAWAY_CLOSED, "only an open giveaway can be cancelled")
        self._keywords.pop(caller.broadcast, None)
        self.hub.fanout.urgent(caller.broadcast, "giveaway.cancelled", {"giveaway_id": gid})
        return {"giveaway_id": gid}

    async def snapshot_part(self, caller: Caller) -> dict[str, Any] | None:
        g = await self.store.active(caller.broadcast)
        if g is None:
            return None
        mine = await self.store.entered(caller.broadcast, g.id, caller.user)
        return {**g.public(), "my_entry": entry_of(g.id, caller.user) if mine else None}

    async def joined(self, caller: Caller) -> None:
        await self.store.joined(caller.broadcast, caller.user)

    async def left(self, caller: Caller) -> None:
        await self.store.left(caller.broadcast, caller.user)


def register(node: Node) -> None:
    hub, part = node.hub, node.giveaways
    hub.command("giveaway.open", roles=STAFF)(part.open)
    hub.command("giveaway.draw", roles=STAFF)(part.draw)
    hub.command("giveaway.cancel", roles=STAFF)(part.cancel)
    hub.command("giveaway.enter", roles=ENTRANTS)(part.enter)
    hub.snapshot_part("giveaway")(part.snapshot_part)
    hub.on_join(part.joined)
    hub.on_leave(part.left)
    node.chat.listeners.append(part.on_chat)
