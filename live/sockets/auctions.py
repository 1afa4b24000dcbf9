"""Live auction commands: create / start / cancel (host), bid / max bid (viewers), the close and
unpaid-win timers, the snapshot part and the audit endpoint. The rules live in auctions/.

Fan-out: the coalesced level `auction:<id>` ({auction_id, state, high, leader (masked name), bids,
min_next, ends_at, v}) after every accepted bid; urgent `auction.created`, `auction.started`,
`auction.cancelled`, `auction.extended` (a late bid moved the end), `auction.won` (the close, with
the result); private `auction.outbid` to the bidder who lost the lead and `auction.hold` to the
winner (or, after an unpaid win, the runner-up) with the hold to pay through `checkout.pay`."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

from auctions import Auction, AuctionError, Auctions, AuctionSpec, BidResult, Offer
from auctions.core import check_increments
from domain import Code, DomainError
from domain import validate as v
from inventory import Inventory
from live.config import Config
from live.hub.hub import Hub
from live.hub.registry import HOST, Caller
from live.hub.scheduler import NOT_YET, Scheduler
from shop.names import mask
from shop.sales import sale_key

if TYPE_CHECKING:
    from live.node import Node

log = logging.getLogger("hawker.hub.auctions")

BIDDERS = ("viewer",)  # the host and moderators run the show: they never bid (no shill bids)
UNPAID_GRACE_MS = 1_000


def level_key(auction_id: str) -> str:
    return f"auction:{auction_id}"


def new_auction_id(broadcast: str, user: str, request_id: str | None) -> str:
    """Deterministic for a (broadcast, host, request_id): a retried create finds the first auction."""
    if request_id:
        return "a" + hashlib.sha256(f"{broadcast}\0{user}\0{request_id}".encode()).hexdigest()[:16]
    return "a" + uuid.uuid4().hex[:16]


def offer_dict(o: Offer, currency: str) -> dict[str, Any]:
    return {"auction_id": o.auction_id, "n": o.n, "sale_id": o.lot_id, "reservation_id": o.reservation_id,
            "price": o.price, "currency": currency, "expires_at": o.expires_at, "second_chance": o.n > 1}


class AuctionPart:
    """The auctions part of one node; `register` plugs its commands into the hub."""

    def __init__(self, hub: Hub, auctions: Auctions, scheduler: Scheduler) -> None:
        self.hub = hub
        self.auc = auctions
        self.timers = scheduler
        self._owner: dict[str, str] = {}  # auction id -> broadcast (never changes)

    @classmethod
    def of(cls, config: Config, hub: Hub, inventory: Inventory, scheduler: Scheduler) -> AuctionPart:
        """The node's auctions (HAWKER_AUCTION_* settings) on its inventory and timers."""
        auctions = Auctions(hub.redis, inventory, bid_rate=config.auction_bid_rate,
                            bid_burst=config.auction_bid_burst, hold_s=config.auction_hold_s)
        return cls(hub, auctions, scheduler)

    # ---- helpers -------------------------------------------------------------------------------

    async def auction_of(self, caller: Caller, payload: dict) -> str:
        """The payload's auction id, which must be an auction of the caller's broadcast (another
        broadcast's auction gets the same answer as a made-up id)."""
        auction_id = v.ident(payload, "auction_id")
        assert auction_id is not None
        owner = self._owner.get(auction_id)
        if owner is None:
            a = await self.auc.get(auction_id)
            owner = a.owner if a is not None else None
            if owner is not None:
                self._owner[auction_id] = owner
        if owner != caller.broadcast:
            raise DomainError(Code.AUCTION_NOT_FOUND, f"no auction {auction_id!r} in this broadcast")
        return auction_id

    def publish(self, broadcast: str, a: Auction) -> None:
        self.hub.fanout.level(broadcast, level_key(a.id), self.level(a))

    @staticmethod
    def level(a: Auction) -> dict[str, Any]:
        return {"auction_id": a.id, "state": a.state, "high": a.high, "leader": a.leader_label or None,
                "bids": a.bids, "min_next": a.min_next(), "ends_at": a.ends_at, "v": a.v}

    def _refuse(self, res: BidResult) -> DomainError:
        if res.code == "INVALID_REQUEST":
            return DomainError(Code.VALIDATION, "invalid value", field=res.details.get("field", ""))
        return AuctionError.of(res.code or "BAD_STATE", **res.details)

    # ---- host commands -------------------------------------------------------------------------

    async def create(self, caller: Caller, payload: dict) -> dict[str, Any]:
        v.only(payload, {"product_id", "start_price", "duration_s", "counter_s", "sudden_death", "increments",
                         "reserve", "request_id"})
        product_id = v.ident(payload, "product_id")
        start_price = v.integer(payload, "start_price", required=False, lo=1, default=100)
        duration_s = v.integer(payload, "duration_s", required=False, lo=5, hi=3600, default=30)
        counter_s = v.integer(payload, "counter_s", required=False, lo=0, hi=60, default=10)
        reserve = v.integer(payload, "reserve", required=False, lo=1)
        request_id = v.ident(payload, "request_id", required=False)
        sudden = payload.get("sudden_death", False)
        if not isinstance(sudden, bool):
            raise v.Invalid("sudden_death", "sudden_death must be true or false")
        increments = payload.get("increments")
        if increments is not None and check_increments(increments) is None:
            raise v.Invalid("increments", "increments: 1-20 rows [from, step], the first from 0, `from` "
                                          "ascending, steps >= 1 and never smaller than the row before")
        bc = await self.hub.broadcasts.require(caller.broadcast)
        if bc.state == "ended":
            raise DomainError(Code.BAD_STATE, "the broadcast has ended", state="ended")
        product = bc.product(product_id)
        if product is None:
            raise DomainError(Code.PRODUCT_NOT_FOUND, f"no product {product_id!r}", field="product_id")
        assert start_price is not None and duration_s is not None and counter_s is not None
        spec = AuctionSpec(auction_id=new_auction_id(caller.broadcast, caller.user, request_id), owner=caller.broadcast,
                           sku=product.id, currency=product.currency, start_price=start_price,
                           duration_ms=duration_s * 1000, counter_ms=counter_s * 1000, sudden_death=sudden,
                           reserve=reserve, title=product.title[:200],
                           **({"increments": tuple(tuple(r) for r in increments)} if increments else {}))
        try:
            existing = await self.auc.get(spec.auction_id)
            a = existing or await self.auc.create(spec)
        except AuctionError as exc:
            raise DomainError(Code.VALIDATION, exc.message) from None
        self._owner[a.id] = caller.broadcast
        if existing is None:
            self.hub.fanout.urgent(caller.broadcast, "auction.created", {"auction": a.public()})
        return {"auction": a.public()}

    async def start(self, caller: Caller, payload: dict) -> dict[str, Any]:
        auction_id = await self.auction_of(caller, payload)
        out = await self.auc.start(auction_id)  # AuctionError: refused as it is
        a = await self.auc.get(auction_id)
        assert a is not None
        await self.timers.add(a.ends_at or 0, "auction.close", auction_id, str(a.ends_at))
        self.hub.fanout.urgent(caller.broadcast, "auction.started", {"auction": a.public()})
        self.publish(caller.broadcast, a)
        for user in out["outbid"]:  # pre-bidders who did not come out on top
            self.hub.fanout.to_user(caller.broadcast, user, "auction.outbid",
                                    {"auction_id": a.id, "high": a.high, "min_next": a.min_next(), "v": a.v})
        return {"auction": a.public()}

    async def cancel(self, caller: Caller, payload: dict) -> dict[str, Any]:
        """Only before the start: a started auction runs to its end (AUCTION_STARTED)."""
        auction_id = await self.auction_of(caller, payload)
        await self.auc.cancel(auction_id)  # AuctionError: refused as it is
        self.hub.fanout.urgent(caller.broadcast, "auction.cancelled", {"auction_id": auction_id})
        return {"auction_id": auction_id}

    # ---- bidding -------------------------------------------------------------------------------

    async def bid(self, caller: Caller, payload: dict) -> dict[str, Any]:
        auction_id = await self.auction_of(caller, payload)
        v.only(payload, {"auction_id", "amount", "next", "request_id"})
        amount = v.integer(payload, "amount", required=False, lo=1)
        nxt = payload.get("next", False)
        if not isinstance(nxt, bool) or nxt == (amount is not None):
            raise v.Invalid("amount", "send either amount or next: true")
        request_id = v.ident(payload, "request_id")
        assert request_id is not None
        res = await self.auc.bid(auction_id, caller.user, request_id, amount, label=mask(caller.name or caller.user))
        return self._answer(caller, auction_id, res)

    async def max_bid(self, caller: Caller, payload: dict) -> dict[str, Any]:
        auction_id = await self.auction_of(caller, payload)
        v.only(payload, {"auction_id", "max", "request_id"})
        max_amount = v.integer(payload, "max", lo=1)
        request_id = v.ident(payload, "request_id")
        assert request_id is not None and max_amount is not None
        res = await self.auc.max_bid(auction_id, caller.user, request_id, max_amount,
                                     label=mask(caller.name or caller.user))
        return self._answer(caller, auction_id, res)

    def _answer(self, caller: Caller, auction_id: str, res: BidResult) -> dict[str, Any]:
        if not res.ok:
            raise self._refuse(res)
        bc = caller.broadcast
        if not res.replay and res.state == "live":
            self.hub.fanout.level(bc, level_key(auction_id), {
                "auction_id": auction_id, "state": "live", "high": res.high, "leader": res.leader_label or None,
                "bids": res.bids, "min_next": res.min_next, "ends_at": res.ends_at, "v": res.v})
            if res.extended:
                self.hub.fanout.urgent(bc, "auction.extended", {"auction_id": auction_id, "ends_at": res.ends_at,
                                                                "at": res.at, "v": res.v})
                self.hub.spawn(self.timers.add(res.ends_at, "auction.close", auction_id, str(res.ends_at)))
            if res.outbid and res.outbid != caller.user:
                self.hub.fanout.to_user(bc, res.outbid, "auction.outbid", {
                    "auction_id": auction_id, "high": res.high, "min_next": res.min_next, "v": res.v})
        out: dict[str, Any] = {"auction_id": auction_id, "kind": res.kind, "state": res.state, "amount": res.amount,
                               "high": res.high,
                               "leading": res.leading, "bids": res.bids, "ends_at": res.ends_at or None,
                               "min_next": res.min_next, "v": res.v, "extended": res.extended, "at": res.at,
                               "replay": res.replay}
        if res.kind == "pre" or res.leading:
            out["max"] = res.max
        return out

    # ---- timers: the close at the server instant, then the unpaid win ------------------------

    async def on_close_timer(self, args: list[str]) -> object:
        auction_id = args[0]
        closed = await self.auc.close(auction_id)
        if closed.code == "NOT_YET":
            if closed.ends_at > int(args[1]):  # the end moved: the timer for the new end takes over
                await self.timers.add(closed.ends_at, "auction.close", auction_id, str(closed.ends_at))
                return "MOVED"
            return NOT_YET
        if closed.code not in ("OK", "ALREADY"):
            return closed.code
        a = await self.auc.get(auction_id)
        if a is None:
            return "GONE"
        if closed.code == "OK":  # the node whose close won announces it, once
            self.publish(a.owner, a)
            self.hub.fanout.urgent(a.owner, "auction.won", {
                "auction_id": a.id, "result": closed.result, "winner": closed.winner_label or None,
                "price": closed.price if closed.result == "sold" else None, "currency": a.currency,
                "bids": closed.bids, "closed_at": closed.closed_at, "v": closed.v})
        if a.result == "sold" and (a.offer_n == 0 or not a.offer_reservation):
            await self.hold_for(a)  # idempotent: a timer retried after a failure finishes the hold
        return closed.code

    async def hold_for(self, a: Auction) -> None:
        offer = await self.auc.settle(a.id)
        if offer is not None:
            await self.offer_out(a, offer)

    async def offer_out(self, a: Auction, offer: Offer) -> None:
        """Make the hold payable through checkout (the sale record checkout looks up, not listed
        among the broadcast's sales), tell its holder once, and look again when it runs out."""
        now = self.hub.clock.now_ms()
        await self.hub.redis.hset(sale_key(offer.lot_id), mapping={
            "id": offer.lot_id, "broadcast": a.owner, "product_id": a.sku, "title": a.title, "image_url": "",
            "price": offer.price, "currency": a.currency, "units": 1, "limit": 1, "hold_s": self.auc.hold_s,
            "opens_at": now, "closes_at": "", "state": "closed", "created_at": now, "opened_at": now,
            "soldout_at": "", "closed_at": now, "close_reason": "auction", "auction_id": a.id})
        # the same timer from every node that gets here (one sorted-set member), then one notice
        await self.timers.add(offer.expires_at + UNPAID_GRACE_MS, "auction.unpaid", a.id, str(offer.n))
        if await self.auc.claim_notice(a.id, offer.n):
            self.hub.fanout.to_user(a.owner, offer.user, "auction.hold", offer_dict(offer, a.currency))

    async def on_unpaid_timer(self, args: list[str]) -> object:
        code, offer = await self.auc.second_chance(args[0])
        if code == "NOT_YET" and offer is not None:  # still held or paying: look again at its end
            await self.timers.add(max(offer.expires_at, self.hub.clock.now_ms()) + UNPAID_GRACE_MS,
                                  "auction.unpaid", args[0], f"{args[1]}.")
            return "LATER"
        if code == "OFFERED" and offer is not None:
            a = await self.auc.get(args[0])
            if a is not None:
                await self.offer_out(a, offer)
        return code

    async def end_broadcast(self, broadcast: str) -> None:
        """Scheduled auctions of an ended broadcast are cancelled; live ones run to their end."""
        for a in await self.auc.of_owner(broadcast, limit=100):
            if a.state == "scheduled":
                try:
                    await self.auc.cancel(a.id)
                    self.hub.fanout.urgent(broadcast, "auction.cancelled", {"auction_id": a.id})
                except AuctionError:
                    pass

    # ---- snapshot ------------------------------------------------------------------------------

    async def snapshot_part(self, caller: Caller) -> list[dict[str, Any]]:
        out = []
        ids = await self.auc.ids_of(caller.broadcast, limit=10)
        found = await asyncio.gather(*(self.auc.get(x, user=caller.user) for x in ids))  # one pipelined trip
        for a in found:
            if a is None:
                continue
            d = a.public()
            d["my_prebid"] = a.my_prebid
            d["my_max"] = a.leader_max if a.leader == caller.user and a.state == "live" else None
            d["leading"] = a.leader == caller.user and a.state == "live"
            d["my_hold"] = None
            if a.offer_user == caller.user and a.offer_lot and a.offer_reservation:
                offer = await self.auc.current_offer(a)
                if offer is not None:
                    d["my_hold"] = offer_dict(offer, a.currency)
            out.append(d)
        return out


def register(node: Node) -> None:
    hub, part = node.hub, node.auctions
    hub.command("auction.create", roles=HOST)(part.create)
    hub.command("auction.start", roles=HOST)(part.start)
    hub.command("auction.cancel", roles=HOST)(part.cancel)
    hub.command("auction.bid", roles=BIDDERS)(part.bid)
    hub.command("auction.max_bid", roles=BIDDERS)(part.max_bid)
    hub.snapshot_part("auctions")(part.snapshot_part)
    node.timers.handler("auction.close")(part.on_close_timer)
    node.timers.handler("auction.unpaid")(part.on_unpaid_timer)
    hub.on_broadcast_end(part.end_broadcast)
