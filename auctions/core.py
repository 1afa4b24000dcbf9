"""The Auctions facade: validates input in Python, then runs one Lua script per operation through
the shared auto-pipeline (redislayer). A won auction becomes a one-unit inventory lot at the
winning price with a hold for the winner, so the existing checkout pays it."""
from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from auctions.audit import replay
from auctions.types import (
    MESSAGES,
    Auction,
    AuctionError,
    AuctionSpec,
    AuditReport,
    BidResult,
    CloseResult,
    Offer,
)
from domain import Code
from domain.validate import is_id
from inventory import Inventory, InventoryError, LotSpec, Refusal, ReservationState
from redislayer import AutoPipeline, Script

HERE = Path(__file__).resolve().parent
SCRIPTS = ("create", "bid", "start", "close", "cancel", "offer", "get")
_KEY_NAMES = ("meta", "req", "rl", "log", "pre")
MAX_AUCTION_ID = 48  # the one id rule (domain/validate.py), 16 short: its lots are "<id>-w<n>"
_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_PRICE = 10**12
MAX_DURATION_MS = 24 * 3600 * 1000
MAX_INCREMENT_ROWS = 20


def keys_for(auction_id: str) -> list[str]:
    """Every key of one auction; all share the hash tag {auc:ID}, hence one cluster slot."""
    tag = f"{{auc:{auction_id}}}"
    return [f"auc:{tag}:{name}" for name in _KEY_NAMES]


def owner_key(owner: str) -> str:
    """Auctions of one owner (the hub: a broadcast), by creation time."""
    return f"auc:{{o:{owner}}}:list"


def _script(name: str) -> Script:
    prelude = (HERE / "prelude.lua").read_text(encoding="utf-8")
    return Script(f"auction_{name}", prelude + "\n" + (HERE / f"{name}.lua").read_text(encoding="utf-8"))


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _valid_user(x: object) -> bool:
    return type(x) is str and 0 < len(x) <= 64 and x.isprintable() and "\n" not in x


def _int(x: object, lo: int, hi: int) -> bool:
    return type(x) is int and lo <= x <= hi


def check_increments(table: Any) -> list[list[int]] | None:
    """A valid table, as lists: rows (from, step), the first from 0, `from` ascending, steps >= 1
    and never smaller than the row before (so a higher price never has a smaller step)."""
    if not isinstance(table, (list, tuple)) or not 1 <= len(table) <= MAX_INCREMENT_ROWS:
        return None
    rows: list[list[int]] = []
    for row in table:
        if not isinstance(row, (list, tuple)) or len(row) != 2 or not all(_int(x, 0, MAX_PRICE) for x in row):
            return None
        rows.append([int(row[0]), int(row[1])])
    if rows[0][0] != 0 or any(r[1] < 1 for r in rows):
        return None
    if any(b[0] <= a[0] or b[1] < a[1] for a, b in itertools.pairwise(rows)):
        return None
    return rows


def _refusal(code: str, **details: Any) -> BidResult:
    return BidResult(ok=False, code=code, message=MESSAGES.get(code, code), details=details)


class Auctions:
    """Auctions of one Redis. `bid_rate`/`bid_burst`: bids per second per user per auction (a token
    bucket on Redis's clock); `hold_s`: how long a winner (or runner-up) has to pay."""

    def __init__(self, redis: aioredis.Redis, inventory: Inventory, *, bid_rate: float = 5.0, bid_burst: int = 10,
                 hold_s: int = 600) -> None:
        if not (isinstance(bid_rate, (int, float)) and 0 < bid_rate <= 1000) or not _int(bid_burst, 1, 1000):
            raise ValueError("bid_rate: 0 < rate <= 1000, bid_burst: int 1..1000")
        if not _int(hold_s, 10, 86_400):
            raise ValueError("hold_s: int 10..86400")
        self.redis = redis
        self.inv = inventory
        self.bid_rate = float(bid_rate)
        self.bid_burst = bid_burst
        self.hold_s = hold_s
        self.scripts = {name: _script(name) for name in SCRIPTS}
        self.pipeline = AutoPipeline(redis)

    async def _run(self, name: str, auction_id: str, *args: Any) -> Any:
        return await self.pipeline.call(self.scripts[name], keys_for(auction_id), list(args))

    @staticmethod
    def valid_id(auction_id: object) -> bool:
        return isinstance(auction_id, str) and len(auction_id) <= MAX_AUCTION_ID and is_id(auction_id)

    async def server_time_ms(self) -> int:
        secs, micros = await self.redis.time()
        return int(secs) * 1000 + int(micros) // 1000

    # --- lifecycle -----------------------------------------------------------------------------

    @staticmethod
    def check_spec(spec: AuctionSpec) -> list[list[int]]:
        """The increments as stored; raises AuctionError(INVALID_REQUEST) naming every bad field."""
        problems = []
        if not Auctions.valid_id(spec.auction_id):
            problems.append("auction_id: 1-48 of A-Z a-z 0-9 _ -")
        if not _valid_user(spec.owner) or not _valid_user(spec.sku):
            problems.append("owner, sku: 1-64 printable characters")
        if type(spec.currency) is not str or not _CURRENCY.fullmatch(spec.currency):
            problems.append("currency: ISO 4217 code")
        if not _int(spec.start_price, 1, MAX_PRICE):
            problems.append(f"start_price: int 1..{MAX_PRICE}")
        if not _int(spec.duration_ms, 1000, MAX_DURATION_MS):
            problems.append("duration_ms: int 1000..86400000")
        if not _int(spec.counter_ms, 0, 600_000):
            problems.append("counter_ms: int 0..600000")
        if type(spec.sudden_death) is not bool:
            problems.append("sudden_death: bool")
        if spec.reserve is not None and not _int(spec.reserve, 1, MAX_PRICE):
            problems.append("reserve: None or int 1..10^12")
        if type(spec.title) is not str or len(spec.title) > 200:
            problems.append("title: up to 200 characters")
        rows = check_increments(spec.increments)
        if rows is None:
            problems.append("increments: 1-20 rows [from, step], first from 0, ascending, steps >= 1 non-decreasing")
        if problems:
            raise AuctionError(Code.INVALID_REQUEST, "; ".join(problems))
        assert rows is not None
        return rows

    async def create(self, spec: AuctionSpec) -> Auction:
        """A scheduled auction (pre-bids accepted). The same id again returns the existing one."""
        rows = self.check_spec(spec)
        flag, _ = await self._run("create", spec.auction_id, spec.owner, spec.sku, spec.currency, spec.start_price,
                                  spec.duration_ms, spec.counter_ms, int(spec.sudden_death), orjson.dumps(rows),
                                  spec.reserve or 0, spec.title, spec.auction_id)
        if _s(flag) == "N":
            await self.redis.zadd(owner_key(spec.owner), {spec.auction_id: await self.server_time_ms()})
        got = await self.get(spec.auction_id)
        assert got is not None
        return got

    async def get(self, auction_id: str, user: str = "") -> Auction | None:
        if not self.valid_id(auction_id):
            return None
        r = await self._run("get", auction_id, user if _valid_user(user) else "")
        if not r:
            return None
        flat, mine, now = r
        h = {_s(flat[i]): _s(flat[i + 1]) for i in range(0, len(flat), 2)}
        def opt(k: str) -> int | None:
            return int(h[k]) if h.get(k) not in (None, "", "0") else None

        return Auction(
            id=h["id"], owner=h["owner"], sku=h["sku"], title=h.get("title", ""), currency=h["currency"],
            start_price=int(h["start"]), duration_ms=int(h["dur"]), counter_ms=int(h["counter"]),
            sudden_death=h["sudden"] == "1", increments=orjson.loads(h["inc"]), reserve=opt("reserve"),
            state=h["state"], created_at=int(h["created_at"]), started_at=opt("started_at"), ends_at=opt("ends_at"),
            high=int(h["high"]), leader=h["leader"], leader_label=h["llabel"], leader_max=int(h["lmax"]),
            bids=int(h["bids"]), v=int(h["v"]), result=h.get("result") or None, winner=h.get("winner") or None,
            price=int(h["price"]) if h.get("price") else None, closed_at=opt("closed_at"),
            offer_n=int(h.get("offer_n", "0")), offer_user=h.get("offer_user") or None,
            offer_price=opt("offer_price"), offer_lot=h.get("offer_lot") or None,
            offer_reservation=h.get("offer_rid") or None,
            my_prebid=orjson.loads(_s(mine))["a"] if mine else None, server_now=int(now))

    async def ids_of(self, owner: str, limit: int = 20) -> list[str]:
        """Ids of the owner's latest auctions, oldest first."""
        return [_s(x) for x in await self.redis.zrange(owner_key(owner), -limit, -1)]

    async def of_owner(self, owner: str, limit: int = 20) -> list[Auction]:
        """The owner's latest auctions, oldest first."""
        out = await asyncio.gather(*(self.get(x) for x in await self.ids_of(owner, limit)))
        return [a for a in out if a is not None]

    def _admin(self, r: Any) -> dict[str, Any]:
        flag, body = _s(r[0]), _s(r[1])
        data = orjson.loads(body) if body else {}
        if flag == "E":
            code = data.pop("code")
            data.pop("ok", None)
            raise AuctionError.of(code, **data)
        return {"replay": flag == "R", **data}

    async def start(self, auction_id: str) -> dict[str, Any]:
        """Start now: ends_at = now + duration; pre-bids apply. Raises AuctionError
        (UNKNOWN_AUCTION, AUCTION_STARTED, AUCTION_CLOSED). The answer names `outbid`: pre-bidders
        who are not leading."""
        if not self.valid_id(auction_id):
            raise AuctionError.of("UNKNOWN_AUCTION")
        out = self._admin(await self._run("start", auction_id))
        if not isinstance(out.get("outbid"), list):
            out["outbid"] = []
        return out

    async def cancel(self, auction_id: str) -> None:
        """Only before the start (AUCTION_STARTED after it, AUCTION_CLOSED once over)."""
        if not self.valid_id(auction_id):
            raise AuctionError.of("UNKNOWN_AUCTION")
        self._admin(await self._run("cancel", auction_id))

    async def close(self, auction_id: str) -> CloseResult:
        """Close once the server's clock reaches ends_at (else NOT_YET with the end in force)."""
        if not self.valid_id(auction_id):
            return CloseResult("UNKNOWN_AUCTION")
        r = await self._run("close", auction_id)
        flag, body = _s(r[0]), _s(r[1])
        data = orjson.loads(body) if body else {}
        if flag == "E":
            return CloseResult(data["code"], ends_at=int(data.get("ends_at", 0)))
        if not data:  # cancelled
            return CloseResult("ALREADY", result="cancelled")
        return CloseResult("OK" if flag == "N" else "ALREADY", result=data["result"], winner=data["winner"],
                           winner_label=data["winner_label"], price=int(data["price"]), bids=int(data["bids"]),
                           ends_at=int(data["ends_at"]), closed_at=int(data["closed_at"]), v=int(data["v"]))

    # --- bidding ---------------------------------------------------------------------------------

    async def bid(self, auction_id: str, user: str, request_id: str, amount: int | None = None,
                  label: str = "") -> BidResult:
        """Bid `amount`, or the next increment when None. Idempotent per (user, request_id)."""
        if amount is not None and not _int(amount, 1, MAX_PRICE):
            return _refusal("INVALID_REQUEST", field="amount")
        return await self._bid("bid", auction_id, user, request_id, amount or 0, label)

    async def max_bid(self, auction_id: str, user: str, request_id: str, max_amount: int,
                      label: str = "") -> BidResult:
        """Let the server bid for `user` up to `max_amount`; before the start this is a pre-bid."""
        if not _int(max_amount, 1, MAX_PRICE):
            return _refusal("INVALID_REQUEST", field="max")
        return await self._bid("max", auction_id, user, request_id, max_amount, label)

    async def _bid(self, kind: str, auction_id: str, user: str, request_id: str, amount: int, label: str) -> BidResult:
        if not self.valid_id(auction_id):
            return _refusal("UNKNOWN_AUCTION")
        if not _valid_user(user) or not is_id(request_id):
            return _refusal("INVALID_REQUEST", field="request_id")
        if type(label) is not str or len(label) > 64:
            return _refusal("INVALID_REQUEST", field="label")
        r = await self._run("bid", auction_id, kind, user, amount, request_id, label, self.bid_rate, self.bid_burst)
        flag = _s(r[0])
        data = orjson.loads(r[1])
        if flag == "E":
            code = data.pop("code")
            data.pop("ok", None)
            return BidResult(ok=False, code=code, message=MESSAGES.get(code, code), details=data)
        return BidResult(ok=True, replay=flag == "R", kind=data["kind"], state=data["state"],
                         amount=int(data.get("amount", data.get("max", 0))), high=int(data["high"]),
                         leading=bool(data["leading"]), max=data.get("max"), leader_label=data.get("leader_label", ""),
                         bids=int(data["bids"]), ends_at=int(data["ends_at"]), v=int(data["v"]),
                         extended=bool(data["extended"]), min_next=int(data.get("min_next", 0)), at=int(data["at"]),
                         outbid=data.get("outbid", ""))

    # --- the log and the audit ---------------------------------------------------------------

    async def bid_log(self, auction_id: str, start: int = 0, end: int = -1) -> list[dict[str, Any]]:
        """The append-only log (accepted bids, pre-bids, start, close, offers), oldest first."""
        if not self.valid_id(auction_id):
            return []
        return [orjson.loads(x) for x in await self.redis.lrange(keys_for(auction_id)[3], start, end)]

    async def audit(self, auction_id: str) -> AuditReport:
        """Replay the log (auctions/audit.py) against the stored auction."""
        auction = await self.get(auction_id)
        if auction is None:
            raise AuctionError.of("UNKNOWN_AUCTION")
        return replay(auction, await self.bid_log(auction_id))

    # --- after the close: the winner's hold, then maybe a second chance ---------------------

    def lot_id(self, auction_id: str, n: int) -> str:
        return f"{auction_id}-w{n}"

    async def _hold(self, auction: Auction, n: int, user: str, price: int) -> Offer:
        """One unit at `price` held for `user`: create the lot, open it, reserve, close it (so no
        one else can ever reserve it). Every step is idempotent, so a retry finishes the job."""
        lot_id = self.lot_id(auction.id, n)
        spec = LotSpec(lot_id=lot_id, sku=auction.sku, total=1, unit_price=price, currency=auction.currency,
                       per_user_limit=1, hold_s=self.hold_s)
        try:
            await self.inv.create_lot(spec)
        except InventoryError as exc:
            if exc.refusal != Refusal.LOT_EXISTS:
                raise
        lot = await self.inv.get_lot(lot_id)
        if lot is not None and lot.state.value == "SCHEDULED":
            await self.inv.open(lot_id)
        res = await self.inv.reserve(lot_id, user, 1, request_id=f"auction-{n}")
        await self.inv.close(lot_id)
        if not res.ok or res.reservation is None:
            raise AuctionError(Code.BAD_STATE, f"the hold for offer {n} failed: {res.code}")
        await self.redis.hset(keys_for(auction.id)[0], mapping={"offer_lot": lot_id, "offer_rid": res.reservation.id})
        return Offer(auction.id, n, user, price, lot_id, res.reservation.id, res.reservation.expires_at_ms)

    async def settle(self, auction_id: str) -> Offer | None:
        """The winner's hold at the winning price (once; a retry returns the same hold). None when
        nobody won."""
        a = await self.get(auction_id)
        if a is None or a.state != "closed" or a.result != "sold" or not a.winner or a.price is None:
            return None
        if a.offer_n >= 1:
            return await self.current_offer(a)
        await self._run("offer", auction_id, 1, a.winner, a.price)
        a = await self.get(auction_id)
        assert a is not None
        if a.offer_n != 1:
            return await self.current_offer(a)
        return await self._hold(a, 1, a.winner, a.price)  # type: ignore[arg-type]  # the offer script just set a winner (offer_n == 1)

    async def current_offer(self, a: Auction) -> Offer | None:
        """The offer now standing (finishing its hold if the node that claimed it stopped half-way)."""
        if a.offer_n == 0 or a.offer_user is None or a.offer_price is None:
            return None
        if not a.offer_reservation:
            return await self._hold(a, a.offer_n, a.offer_user, a.offer_price)
        res = await self.inv.get_reservation(a.offer_lot or "", a.offer_reservation)
        return Offer(a.id, a.offer_n, a.offer_user, a.offer_price, a.offer_lot or "", a.offer_reservation,
                     res.expires_at_ms if res else 0)

    async def claim_notice(self, auction_id: str, n: int) -> bool:
        """True once per offer: whoever gets it tells the holder (however many nodes finish the hold)."""
        return bool(await self.redis.hsetnx(keys_for(auction_id)[0], f"told{n}", 1))

    async def second_chance(self, auction_id: str) -> tuple[str, Offer | None]:
        """After the winner's hold: 'PAID' (sold), 'NOT_YET' (still held or paying; the Offer says
        until when), 'OFFERED' (the runner-up now holds it at their own highest bid), or
        'NO_RUNNER_UP' / 'DONE' (nothing more to do)."""
        a = await self.get(auction_id)
        if a is None or a.offer_n == 0:
            return "DONE", None
        offer = await self.current_offer(a)
        if a.offer_n >= 2:
            return "DONE", offer
        assert offer is not None
        await self.inv.expire_due(offer.lot_id)
        res = await self.inv.get_reservation(offer.lot_id, offer.reservation_id)
        if res is not None and res.state == ReservationState.SOLD:
            return "PAID", offer
        if res is not None and res.state in (ReservationState.HELD, ReservationState.PAYING):
            return "NOT_YET", offer
        report = replay(a, await self.bid_log(auction_id))
        user, amount = report.runner_up, report.runner_up_amount
        if not user or (a.reserve is not None and amount < a.reserve):
            return "NO_RUNNER_UP", None
        await self._run("offer", auction_id, 2, user, amount)
        a = await self.get(auction_id)
        assert a is not None
        return "OFFERED", await self.current_offer(a)
